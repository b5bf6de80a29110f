"""Redis down: the agent keeps serving, and heartbeats resume by themselves when Redis returns (a real redis-server of
this test's own, stopped and started again by PID on the same port)."""
from __future__ import annotations

import shutil
import time

import pytest
import redis
from fastapi.testclient import TestClient

from netgpt.edge_agent.agent import AgentSettings, EdgeAgent, create_app
from netgpt.core import bus
from netgpt.stack import services
from netgpt.core.settings import Settings
from netgpt.stack.services import free_port
from tests.edge_agent.conftest import StubClassifier


def start_redis(port: int, run_dir) -> services.Redis:
    """The project's own redis-server lifecycle; a fresh run_dir each time, so a restarted server comes back empty."""
    server = services.Redis(Settings(run_dir=run_dir, redis_port=port))
    server.start()
    services.wait_for(server.healthy, 10, "redis-server to answer")
    return server


def wait_for(predicate, timeout_s: float = 10.0) -> bool:
    try:
        return bool(services.wait_for(predicate, timeout_s, "the condition", interval=0.1))
    except TimeoutError:
        return False


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed: run scripts/setup.sh")
def test_serving_survives_redis_outage_and_heartbeats_resume(tmp_path, edge_lm, caplog):
    port = free_port()
    server = start_redis(port, tmp_path / "before")
    settings = AgentSettings(redis_port=port, cloud_url=f"http://127.0.0.1:{free_port()}/v1", cloud_timeout_s=2,
                             heartbeat_interval_s=0.3, edge_max_tokens=4, draft_tokens=0)
    agent = EdgeAgent(settings, "mec7", ["c3", "c4"], "10.0.0.52:8100", lm=edge_lm, classifier=StubClassifier())
    r = redis.Redis(port=port, decode_responses=True)
    body = {"user": "bob", "cell": "c3", "text": "what time is it here?", "mode": "edge-only"}
    try:
        with TestClient(create_app(agent)) as client:
            assert wait_for(lambda: "mec7" in bus.live_agents(r))
            hb = bus.live_agents(r)["mec7"]
            assert hb.cells == ["c3", "c4"] and hb.capacity_rps > 0 and hb.models == ["tiny-edge"]
            assert 0 < r.pttl(bus.Keys.agent("mec7")) <= 3 * 300

            server.stop()
            for _ in range(3):  # requests are served while Redis is down, quickly
                t0 = time.monotonic()
                resp = client.post("/v1/prompt", json=body)
                assert resp.status_code == 200 and "Osaka" in resp.json()["answer"]
                assert time.monotonic() - t0 < 2
            assert wait_for(lambda: client.get("/health").json()["redis"] == "down")
            failed = agent.bus.dropped["heartbeats_redis_down"]
            assert wait_for(lambda: agent.bus.dropped["heartbeats_redis_down"] > failed)

            server = start_redis(port, tmp_path / "after")  # back, empty: no heartbeat until the agent writes one again
            assert wait_for(lambda: "mec7" in bus.live_agents(r), timeout_s=10)
            assert client.get("/health").json()["redis"] == "up"
            assert client.post("/v1/prompt", json=body).status_code == 200
            assert wait_for(lambda: r.xlen(bus.Streams.USER_INTENTS) >= 1)
            assert bus.live_agents(r)["mec7"].load_rps > 0
    finally:
        server.stop()
    down_logs = [m for m in caplog.messages if "Redis unavailable" in m]
    assert len(down_logs) == 1  # logged once per outage, not once per heartbeat
