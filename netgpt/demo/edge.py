"""The edge part of `make demo`: the cloud LLM on host `cloud`, an edge agent on each MEC host, users prompting the edge
service's virtual IP, the controller steering each cell to an MEC node and failing over when one stops.

Everything started here runs inside a Mininet host and is stopped by PID before the network is torn down.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape

from netgpt.core import bus
from netgpt.stack import services
from netgpt.stack.network import host_http, wait_host_http
from netgpt.stack.services import stop_child, wait_for
from netgpt.core.settings import Settings

AGENTS = {"mec1": ("10.0.0.51", "c1,c2"), "mec2": ("10.0.0.52", "c3,c4")}
PROMPTS = [("u1", "c1", "Any good place for dinner tonight?"), ("u3", "c3", "What should I see this afternoon?")]
CLOUD_IP, CLOUD_PORT = "10.0.0.100", 8000


@dataclass
class EdgeReport:
    answers: list[dict] = field(default_factory=list)
    allocations: dict = field(default_factory=dict)
    intents_published: int = 0
    failover_s: float | None = None
    after_failover: dict = field(default_factory=dict)
    error: str = ""


def _netgpt(*args: str) -> list[str]:
    return [sys.executable, "-m", "netgpt.cli", *args]


def _allocations(r) -> dict:
    return {c: json.loads(v)["node_id"] for c, v in sorted(r.hgetall(bus.Keys.ALLOCATIONS).items())}


def _ask(host, user: str, cell: str, text: str, s: Settings) -> dict:
    t0 = time.monotonic()
    status, resp = host_http(host, f"http://{s.edge_vip}:{s.edge_port}/v1/prompt",
                             {"user": user, "cell": cell, "text": text, "mode": "netgpt"}, timeout_s=120)
    if status != 200:
        raise RuntimeError(f"{user}'s prompt failed ({status}): {resp.get('error', resp)}")
    return {"user": user, "cell": cell, "text": text, "completed": resp["completed_prompt"], "answer": resp["answer"],
            "answered_by": resp["answered_by"], "node": resp.get("source", ""), "ms": (time.monotonic() - t0) * 1000,
            "flags": resp.get("flags", []),
            # who wrote the sentence of facts after the user's words: the edge LM (SmolLM2-135M + its `complete`
            # adapter) or, when its sentence was not grounded in the cell's context (or no LM is loaded), the rules
            "completed_by": "edge LM" if "edge_lm_completion" in resp.get("flags", []) else "rules"}


def run_edge_loop(net, s: Settings, log, log_dir: Path) -> EdgeReport:
    """Run the loop on a started `mec` network whose controller knows the cells; returns what happened."""
    report, procs = EdgeReport(), {}
    r = bus.connect(s)
    env = {**os.environ, "NETGPT_REDIS_SOCKET": str(services.Redis(s).socket), "HF_HUB_OFFLINE": "1",
           "NETGPT_CLOUD_URL": f"http://{CLOUD_IP}:{CLOUD_PORT}/v1", "NETGPT_CLOUD_MAX_TOKENS": "48",
           "NETGPT_HEARTBEAT_INTERVAL_S": str(s.heartbeat_interval_s)}
    log_dir.mkdir(parents=True, exist_ok=True)
    intents_before = r.xlen(bus.Streams.USER_INTENTS)
    try:
        log("starting the cloud LLM on host cloud and an edge agent on each MEC host ...")
        procs["cloud"] = net.get("cloud").popen(
            _netgpt("cloud", "serve", "--host", "0.0.0.0", "--port", str(CLOUD_PORT)), env=env,
            stdout=open(log_dir / "cloud.log", "w"), stderr=subprocess.STDOUT)
        for node, (ip, cells) in AGENTS.items():
            procs[node] = net.get(node).popen(
                _netgpt("edge", "serve", "--node-id", node, "--cells", cells, "--port", str(s.edge_port),
                        "--address", f"{ip}:{s.edge_port}"), env=env,
                stdout=open(log_dir / f"{node}.log", "w"), stderr=subprocess.STDOUT)
        u1, cloud = net.get("u1"), net.get("cloud")
        for node, (ip, _) in AGENTS.items():  # checked from the cloud host: users go through the VIP
            wait_host_http(cloud, f"http://{ip}:{s.edge_port}/health", 180)
        wait_host_http(net.get("mec1"), f"http://{CLOUD_IP}:{CLOUD_PORT}/health", 180)
        home = {"c1": "mec1", "c2": "mec1", "c3": "mec2", "c4": "mec2"}
        report.allocations = wait_for(lambda: _allocations(r) == home and _allocations(r), 30, "cells on their home nodes")
        log(f"allocations: {report.allocations} (users reach the edge service at {s.edge_vip})")

        for user, cell, text in PROMPTS:
            answer = _ask(net.get(user), user, cell, text, s)
            report.answers.append(answer)
            log(escape(f"{user} in {cell} asks: {text}\n  completed at the edge ({answer['completed_by']}): "
                       f"{answer['completed']}\n"
                       f"  answer ({answer['answered_by']}, {answer['ms']:.0f} ms): {answer['answer'][:200]}"))

        log("stopping mec1's agent: its cells should move to mec2 ...")
        stop_child(procs["mec1"])
        stopped = time.time()
        wait_for(lambda: _allocations(r).get("c1") == "mec2", 10, "c1 to move to mec2")
        report.failover_s = time.time() - stopped
        report.after_failover = _ask(u1, "u1", "c1", "Is it a good time for a walk?", s)
        log(f"failover in {report.failover_s:.1f} s; u1 answered by {report.after_failover['node'] or 'mec2'}")
        report.intents_published = r.xlen(bus.Streams.USER_INTENTS) - intents_before
    except (TimeoutError, RuntimeError, OSError) as exc:
        report.error = f"{exc} (logs in {log_dir})"
    finally:
        for p in procs.values():
            stop_child(p)
    return report
