"""Proactive traffic engineering on real OVS: two announced heavy flows that share a shortest path are split over the
diamond's two paths before they start, and their traffic really takes both (read from the middle switches' counters).
The loss figures under shaped links are bench/loop.py's job; this checks the decision and the flows it installs."""
import subprocess
import time

import pytest

from netgpt.core import bus
from netgpt.core.messages import UserIntent

pytestmark = pytest.mark.integration


def _intent_moves(r, request_id: str, timeout_s: float = 10.0) -> list:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        moves = [m for _, m in bus.read_range(r, bus.Streams.AUDIT)
                 if m.kind == "flow_action" and m.cause_id == f"intent:{request_id}"]
        if moves:
            return moves
        time.sleep(0.2)
    return []


def test_announced_flows_are_split_over_both_paths(stack):
    assert stack.te_mode == "proactive"
    from netgpt.stack.network import running_network, switch_tx_bytes
    from netgpt.stack.controller_feed import publish_cells, wait_discovered

    r = bus.connect(stack)
    with running_network("diamond", stack.ofp_port) as net:
        wait_discovered(r, net)
        publish_cells(r, net)  # link capacities: 100 Mbit/s on each middle link
        assert net.pingAll(timeout=2) == 0.0  # every pair now has a path: all on the same shortest one
        for i in (1, 2):
            srv, usr = net.get(f"srv{i}"), net.get(f"usr{i}")
            bus.publish(r, bus.Streams.USER_INTENTS, UserIntent(
                source="test", request_id=f"te-{i}", user=usr.name, cell=f"c{i}", service_class="video_streaming",
                confidence=0.95, bandwidth_mbps=70, duration_s=60, latency_class="best_effort", user_ip=usr.IP(),
                server_ip=srv.IP()))
        # Two 70 Mbit/s flows do not fit one 100 Mbit/s path: one of the pairs is moved, before any of its traffic.
        moved = _intent_moves(r, "te-2")
        assert moved, "the second intent did not move its pair"
        assert all(m.previous_actions for m in moved if m.dpid == 0x201)  # the ingress switch changed its out port

        middle = [net.get("te2"), net.get("te3")]
        before = [switch_tx_bytes(sw) for sw in middle]
        servers = [net.get(f"usr{i}").popen(["iperf", "-s", "-u", "-p", str(5300 + i)], stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL) for i in (1, 2)]
        time.sleep(0.5)
        clients = [net.get(f"srv{i}").popen(["iperf", "-c", net.get(f"usr{i}").IP(), "-u", "-p", str(5300 + i),
                                             "-b", "20M", "-l", "1400", "-t", "3"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in (1, 2)]
        try:
            for c in clients:
                c.wait(timeout=20)
        finally:
            for p in clients + servers:
                if p.poll() is None:
                    p.terminate()
                    p.wait(timeout=5)
        carried = [switch_tx_bytes(sw) - b for sw, b in zip(middle, before)]
        print(f"bytes sent by te2, te3 during two 20 Mbit/s x 3 s flows: {carried}")
        # Each path carried about one flow (7.5 MB); on a single path one switch would carry both and the other ~0.
        assert min(carried) > 4_000_000 and max(carried) < 12_000_000
