"""The edge agent on real OVS: user u1 (cell c1) sends a prompt to the agent on MEC host mec1 (10.0.0.51); the agent
completes it with c1's location and calls the cloud LLM (`netgpt cloud serve`, SmolLM2) on host `cloud` (10.0.0.100);
the answer comes back over the emulated network. The agent heartbeats into Redis through run_dir/redis.sock.

Model sizes: the cloud is the real offline default (converted once and cached); the edge LM is a fixture-sized GPT-2
(its text is noise; the location facts come from the context, which is what this test checks)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from netgpt.core import bus
from netgpt.stack.services import stop_child

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
NETGPT = str(ROOT / ".venv" / "bin" / "netgpt") if (ROOT / ".venv" / "bin" / "netgpt").exists() else "netgpt"


@pytest.fixture(scope="module")
def tiny_edge_dir(tmp_path_factory) -> Path:
    from tests.edge_agent.conftest import build_tiny_edge_model

    return build_tiny_edge_model(tmp_path_factory.mktemp("edge-tiny") / "tiny-edge")


def test_user_prompt_through_edge_agent_to_cloud_on_mininet(stack, tiny_edge_dir, tmp_path):
    from netgpt.stack.network import host_http as http
    from netgpt.stack.network import running_network
    from netgpt.stack.controller_feed import wait_discovered
    from netgpt.stack.network import wait_host_http as wait_http

    r = bus.connect(stack)
    env = {**os.environ, "NETGPT_REDIS_SOCKET": str(stack.run_dir / "redis.sock"), "HF_HUB_OFFLINE": "1",
           "NETGPT_CLOUD_URL": "http://10.0.0.100:8000/v1", "NETGPT_CLOUD_MAX_TOKENS": "12",
           "NETGPT_CLOUD_TIMEOUT_S": "60", "NETGPT_DRAFT_TOKENS": "4", "NETGPT_HEARTBEAT_INTERVAL_S": "1"}
    procs: list[subprocess.Popen] = []
    with running_network("mec", stack.ofp_port) as net:
        wait_discovered(r, net)
        cloud, mec1, u1 = net.get("cloud"), net.get("mec1"), net.get("u1")
        try:
            procs.append(cloud.popen([NETGPT, "cloud", "serve", "--host", "0.0.0.0", "--port", "8000"], env=env,
                                     stdout=open(tmp_path / "cloud.log", "w"), stderr=subprocess.STDOUT))
            procs.append(mec1.popen([NETGPT, "edge", "serve", "--node-id", "mec1", "--cells", "c1,c2",
                                     "--port", "8100", "--address", "10.0.0.51:8100",
                                     "--edge-base", str(tiny_edge_dir), "--no-intents"], env=env,
                                    stdout=open(tmp_path / "edge.log", "w"), stderr=subprocess.STDOUT))
            health = wait_http(u1, "http://10.0.0.51:8100/health", 90)
            assert health["node_id"] == "mec1" and health["cells"] == ["c1", "c2"]
            wait_http(mec1, "http://10.0.0.100:8000/health", 120)

            sent_at = time.time()
            status, resp = http(u1, "http://10.0.0.51:8100/v1/prompt",
                                {"user": "u1", "cell": "c1", "text": "what should I wear today?"}, timeout_s=90)
            assert status == 200 and resp["answered_by"] == "cloud" and resp["answer"].strip(), resp
            assert resp["cloud_tokens_in"] > 0 and resp["cloud_tokens_out"] > 0
            lyon = ZoneInfo("Europe/Paris")
            expected = {datetime.fromtimestamp(t, lyon).strftime("%H:%M") for t in (sent_at, time.time())}
            assert "Lyon" in resp["completed_prompt"], resp["completed_prompt"]
            assert any(t in resp["completed_prompt"] for t in expected), (expected, resp["completed_prompt"])

            status, bad = http(u1, "http://10.0.0.51:8100/v1/prompt", {"user": "u1", "cell": "c9", "text": "hi"})
            assert status == 404 and "c9" in bad["error"]

            agents = bus.live_agents(r)
            assert "mec1" in agents and agents["mec1"].address == "10.0.0.51:8100" and agents["mec1"].cells == [
                "c1", "c2"]
        finally:
            for p in procs:
                stop_child(p)
            logs = {n: (tmp_path / f"{n}.log").read_text()[-1500:] for n in ("cloud", "edge")
                    if (tmp_path / f"{n}.log").exists()}
            print(json.dumps(logs, indent=1), file=sys.stderr)
    assert all(p.poll() is not None for p in procs)
