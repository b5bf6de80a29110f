"""Inferred user intents change an allocation before the node is overloaded, on real processes: users in cells c1
and c2 send prompts to the edge VIP at a rate with the shape of the World Cup 98 site's evening rise (bench/data,
real 5-minute steps, one per 2 s here); the MEC agents (`netgpt edge serve`, intent classifier on) answer them and
publish an inferred UserIntent per prompt; the forecast loop `netgpt up` started forecasts each cell's requests/s
(warm start: the three days of trace before, at the same scale); allocation moves a cell off mec1 (capacity 2 req/s)
when the cells' forecast demand exceeds it, while what they actually send is still under it."""
import json
import os
import subprocess
import sys
import time

import pytest

from netgpt.core import bus
from netgpt.core.messages import Allocation, Forecast
from netgpt.stack.services import wait_for
from tests.integration.conftest import running_stack

pytestmark = pytest.mark.integration

STEP_S, PERIOD, WC98_RISE, CAPACITY = 2.0, 288, 1231, 2.0
PROMPTS = ["play the match highlights", "how do I get to the stadium?", "stream the second half live",
           "any good place for dinner tonight?", "what time does the game start?", "show me the goals again"]


@pytest.fixture(scope="module")
def loop_stack(tmp_path_factory):
    with running_stack(tmp_path_factory, forecast_step_s=STEP_S, forecast_period=PERIOD, forecast_horizon=5,
                       forecast_refit_s=30.0) as s:
        yield s


def _allocs(r) -> dict:
    return {c: json.loads(v)["node_id"] for c, v in r.hgetall(bus.Keys.ALLOCATIONS).items()}


def test_forecast_demand_from_inferred_intents_moves_a_cell_before_its_node_is_overloaded(loop_stack, tmp_path):
    from netgpt.stack.controller_feed import publish_cells, wait_discovered
    from netgpt.stack.network import host_http, running_network, wait_host_http
    from netgpt.stack.workload import PromptReplay, load_trace

    s, r = loop_stack, bus.connect(loop_stack)
    replay = PromptReplay(load_trace("wc98"), start=WC98_RISE, steps=45, step_s=STEP_S, peak_rps=1.5)
    env = dict(os.environ, NETGPT_REDIS_SOCKET=str(s.run_dir / "redis.sock"), NETGPT_HEARTBEAT_INTERVAL_S="0.5")
    agent = [sys.executable, "-m", "netgpt.cli", "edge", "serve", "--edge-base", "none", "--port", "8100"]
    procs, senders = [], []
    with running_network("mec", s.ofp_port) as net:
        wait_discovered(r, net)
        publish_cells(r, net)
        assert net.pingAll(timeout=2) == 0.0
        try:
            nodes = (("mec1", "10.0.0.51", "c1,c2", CAPACITY), ("mec2", "10.0.0.52", "c3,c4", 10.0))
            for node, ip, cells, capacity in nodes:
                procs.append(net.get(node).popen(
                    [*agent, "--node-id", node, "--cells", cells, "--address", f"{ip}:8100"],
                    env={**env, "NETGPT_CAPACITY_RPS": str(capacity)}, stdout=open(tmp_path / f"{node}.log", "w"),
                    stderr=subprocess.STDOUT))
            for node, *_ in nodes:  # from the node itself: a user's direct connection gets VIP-rewritten replies
                wait_host_http(net.get(node), "http://127.0.0.1:8100/health", 120)
            home = {"c1": "mec1", "c2": "mec1", "c3": "mec2", "c4": "mec2"}
            wait_for(lambda: _allocs(r) == home, 60, f"allocations {home}")
            for user, cell in (("u1", "c1"), ("u2", "c2")):  # through the VIP, once: the agent's models are loaded
                status, body = host_http(net.get(user), f"http://{s.edge_vip}:8100/v1/prompt",
                                         {"user": user, "cell": cell, "text": PROMPTS[0], "mode": "edge-only"},
                                         timeout_s=60)
                assert status == 200 and body["source"] == "edge:mec1", body
            t0 = time.time() + 1.0
            for cell in ("c1", "c2"):
                r.hset(bus.Keys.FORECAST_HISTORY, f"cell:{cell}:requests_rps", replay.history_entry(3 * PERIOD, t0))
            senders = replay.start_users(net, {"u1": "c1", "u2": "c2"}, f"http://{s.edge_vip}:8100/v1/prompt",
                                         PROMPTS, t0)
            moved = None
            while moved is None and time.time() < t0 + replay.steps * STEP_S + 5:
                time.sleep(0.5)
                moved = next((m for _, m in bus.read_range(r, bus.Streams.AUDIT) if isinstance(m, Allocation)
                              and m.previous_node_id == "mec1" and m.cell in ("c1", "c2")), None)
            # The senders keep to their schedule after the move: wait for its end (and the last answers).
            end = t0 + replay.steps * STEP_S
            answers = [line.split() for p in senders
                       for line in p.communicate(timeout=max(0.0, end - time.time()) + 30)[0].splitlines()]
        finally:
            for p in procs + senders:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        forecasts = [m for _, m in bus.read_range(r, bus.Streams.FORECASTS)
                     if isinstance(m, Forecast) and str(m.target) in ("cell:c1:requests_rps", "cell:c2:requests_rps")]
        intents = [m for _, m in bus.read_range(r, bus.Streams.USER_INTENTS)]
    assert len(answers) == len(replay.send_times(t0)) * 2 and all(a[1] == "200" for a in answers), answers[:5]
    assert len(intents) >= 0.9 * len(answers)  # mec1 inferred an intent for (almost) every prompt
    assert forecasts, "no cell request-rate forecast was published"
    assert moved is not None, (f"no cell left mec1; last forecasts: "
                               f"{[(str(f.target), round(f.peak(0.9), 2)) for f in forecasts[-4:]]}")
    print(f"moved at t0+{moved.ts - t0:.1f} s: {moved.reason}")
    assert "predicted" in moved.reason and moved.node_id == "mec2"
    # What the two cells actually sent when the cell moved was under mec1's capacity; their forecasts were over it.
    assert 2 * replay.rate_at(t0, moved.ts) < CAPACITY
    latest = {}
    for f in forecasts:
        if f.ts <= moved.ts:
            latest[str(f.target)] = f
    assert sum(f.peak(s.forecast_act_quantile) for f in latest.values()) > CAPACITY
