"""The edge services of `make demo`: the cloud LLM on host `cloud` and an edge agent on each MEC host, started and
stopped by PID inside their Mininet hosts, and users' prompts to the edge service's virtual IP, each response saved
as one JSON line in the run folder (what the report reads of the agents).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from netgpt.core import bus
from netgpt.core.settings import Settings
from netgpt.demo.report_data import RESPONSES_FILE
from netgpt.stack import services
from netgpt.stack.network import host_http, wait_host_http

AGENTS = {"mec1": ("10.0.0.51", "c1,c2"), "mec2": ("10.0.0.52", "c3,c4")}
HOME = {"c1": "mec1", "c2": "mec1", "c3": "mec2", "c4": "mec2"}
CLOUD_IP, CLOUD_PORT = "10.0.0.100", 8000
# One sampled prompt's wait: the samples run in the day's timeline one after another, and a run whose first sample
# waited 121 s for an answer (the agents overloaded) did its operator steps and the failover after the day's traffic
ASK_TIMEOUT_S = 45
DEMO_SLOTS = 2


def _netgpt(*args: str) -> list[str]:
    return [sys.executable, "-m", "netgpt.cli", *args]


def allocations(r) -> dict[str, str]:
    """cell -> MEC node, as the controller has it now."""
    return {c: json.loads(v)["node_id"] for c, v in sorted(r.hgetall(bus.Keys.ALLOCATIONS).items())}


class EdgeServices:
    """The cloud LLM and the MEC agents of one demo run. `capacity_rps`: what each agent announces (allocation sheds a
    cell before a node's predicted demand passes it)."""

    def __init__(self, net, s: Settings, run_dir: Path, capacity_rps: dict[str, float]):
        self.net, self.s, self.run_dir, self.capacity_rps = net, s, run_dir, capacity_rps
        self.log_dir = run_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {**os.environ, "NETGPT_REDIS_SOCKET": str(services.Redis(s).socket), "HF_HUB_OFFLINE": "1",
                    "NETGPT_CLOUD_URL": f"http://{CLOUD_IP}:{CLOUD_PORT}/v1", "NETGPT_CLOUD_MAX_TOKENS": "48",
                    "NETGPT_HEARTBEAT_INTERVAL_S": str(s.heartbeat_interval_s),
                    # three llama.cpp servers (the cloud, two agents) share the machine's cores: with one slot each
                    # runs cores-many threads, which wait on each other at every token while the others hold the
                    # cores (the day's first sampled prompts took 7-38 s, the cloud timed out at 30 s). 2 slots are
                    # 1 thread each; `netgpt cloud serve` takes it, `netgpt edge serve` opens 1 slot whatever is set
                    "NETGPT_SERVING_SLOTS": str(DEMO_SLOTS)}

    def _popen(self, name: str, host: str, cmd: list[str], env: dict) -> None:
        """Start `cmd` in a Mininet host with its output appended to logs/<name>.log; the child holds the file, this
        process closes its own copy at once (one per start: mec1's agent starts twice a run)."""
        with open(self.log_dir / f"{name}.log", "a") as log:
            self.procs[name] = self.net.get(host).popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)

    def start(self) -> None:
        self._popen("cloud", "cloud", _netgpt("cloud", "serve", "--host", "0.0.0.0", "--port", str(CLOUD_PORT)),
                    self.env)
        for node in AGENTS:
            self.start_agent(node)

    def start_agent(self, node: str) -> None:
        ip, cells = AGENTS[node]
        env = {**self.env, "NETGPT_CAPACITY_RPS": str(self.capacity_rps.get(node, 2.0))}
        self._popen(node, node, _netgpt("edge", "serve", "--node-id", node, "--cells", cells, "--port",
                                        str(self.s.edge_port), "--address", f"{ip}:{self.s.edge_port}"), env)

    def wait_agent(self, node: str, timeout_s: float = 180) -> None:
        """Checked from the cloud host: a user's direct connection to an agent gets VIP-rewritten replies."""
        wait_host_http(self.net.get("cloud"), f"http://{AGENTS[node][0]}:{self.s.edge_port}/health", timeout_s)

    def wait_ready(self, timeout_s: float = 180) -> None:
        for node in AGENTS:
            self.wait_agent(node, timeout_s)
        wait_host_http(self.net.get("mec1"), f"http://{CLOUD_IP}:{CLOUD_PORT}/health", timeout_s)

    def stop_agent(self, node: str) -> None:
        proc = self.procs.pop(node, None)
        if proc is not None:
            services.stop_child(proc)

    def stop_all(self) -> None:
        for name in list(self.procs):
            services.stop_child(self.procs.pop(name))

    def ask(self, user: str, cell: str, text: str, mode: str = "netgpt") -> dict:
        """One prompt from a user's host to the edge VIP; the record (request, status, the agent's response) is
        appended to the run's responses file and returned."""
        asked = time.time()
        for _attempt in range(2):  # a connection reset: the cell moved to another node mid-request; asked again
            status, resp = host_http(self.net.get(user), f"http://{self.s.edge_vip}:{self.s.edge_port}/v1/prompt",
                                     {"user": user, "cell": cell, "text": text, "mode": mode}, timeout_s=ASK_TIMEOUT_S)
            if status != 0 or "reset" not in str(resp.get("error", "")):
                break
        record = {"user": user, "cell": cell, "text": text, "mode": mode, "asked_ts": asked, "status": status,
                  "client_ms": round((time.time() - asked) * 1000, 1), "response": resp}
        with open(self.run_dir / RESPONSES_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")
        return record
