"""Operator intents on real OVS: a meter caps a cell, a reserved-for-later mark is installed, bad intents are rejected
with a reason and change nothing, and an expired intent is reverted."""
import json
import time

import pytest

from netgpt.core import bus
from netgpt.core.messages import OperatorIntent

pytestmark = pytest.mark.integration


def _result(r, intent_id, timeout_s=10.0, reason_prefix=None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        raw = r.hget(bus.Keys.INTENT_STATUS, intent_id)
        if raw and (reason_prefix is None or json.loads(raw)["reason"].startswith(reason_prefix)):
            return json.loads(raw)
        time.sleep(0.1)
    raise AssertionError(f"no result for intent {intent_id}")


def _policy_flows(sw) -> list[str]:
    out = sw.cmd(f"ovs-ofctl -O OpenFlow13 dump-flows {sw.name} table=0")
    return sorted(line.split(" actions=")[0].split("priority=")[-1] + " " + line.split(" actions=")[-1]
                  for line in out.splitlines() if "priority=" in line)


def test_rate_limit_reject_and_expiry(stack):
    from netgpt.stack.network import iperf, running_network
    from netgpt.stack.controller_feed import publish_cells, wait_discovered

    r = bus.connect(stack)
    with running_network("mec", stack.ofp_port) as net:
        wait_discovered(r, net)
        publish_cells(r, net)
        assert net.pingAll(timeout=2) == 0.0
        free = iperf(net, "u1", "cloud", seconds=2)
        assert free > 100

        cap = OperatorIntent(intent_id="cap-c1", text="limit cell c1 to 20 Mbit/s for a while", action="rate_limit",
                             selector={"cell": "c1"}, params={"rate_mbps": 20}, expires_ts=time.time() + 12)
        bus.publish(r, bus.Streams.OPERATOR_INTENTS, cap)
        assert _result(r, "cap-c1")["accepted"]
        capped = iperf(net, "u1", "cloud", seconds=3)
        print(f"u1->cloud: {free:.0f} Mbit/s free, {capped:.1f} Mbit/s under a 20 Mbit/s meter")
        assert capped < 30

        acc1 = net.get("acc1")
        before = _policy_flows(acc1)
        bad = [
            ("bad-switch", dict(action="rate_limit", selector={"dpid": 99, "port": 1}, params={"rate_mbps": 5}),
             "unknown switch 99"),
            ("bad-port", dict(action="rate_limit", selector={"dpid": 4, "port": 77}, params={"rate_mbps": 5}),
             "switch 4 has no port 77"),
            ("bad-link", dict(action="avoid_link", params={"link": "1-9"}), "unknown switch 9"),
            ("bad-dpid", dict(action="rate_limit", selector={"dpid": "acc1", "port": 1}, params={"rate_mbps": 5}),
             "must be integers"),
            ("bad-rate", dict(action="rate_limit", selector={"cell": "c2"}, params={"rate_mbps": -1}), "rate_mbps"),
            ("bad-cell", dict(action="prioritize", selector={"cell": "c9"}), "unknown cell 'c9'"),
            ("bad-node", dict(action="allocate", selector={"cell": "c1"}, params={"node_id": "mec7"}), "not alive"),
        ]
        for intent_id, fields, reason in bad:
            bus.publish(r, bus.Streams.OPERATOR_INTENTS, OperatorIntent(intent_id=intent_id, **fields))
        for intent_id, _, reason in bad:
            res = _result(r, intent_id)
            assert not res["accepted"] and reason in res["reason"], res
        r.xadd(bus.Streams.OPERATOR_INTENTS, {"kind": "operator_intent", "v": "1", "data": "{broken"})
        mark = OperatorIntent(intent_id="mark-c2", action="prioritize", selector={"cell": "c2"}, params={"dscp": 46})
        bus.publish(r, bus.Streams.OPERATOR_INTENTS, mark)
        assert _result(r, "mark-c2")["accepted"]  # processed after the broken entry: the app survived it
        assert _policy_flows(acc1) == before  # rejected intents changed nothing on c1's switch
        assert "ip_dscp" in net.get("acc2").cmd("ovs-ofctl -O OpenFlow13 dump-flows acc2 table=0") or \
            "mod_nw_tos" in net.get("acc2").cmd("ovs-ofctl -O OpenFlow13 dump-flows acc2 table=0")

        assert _result(r, "cap-c1", timeout_s=15, reason_prefix="expired")["accepted"]
        assert iperf(net, "u1", "cloud", seconds=2) > 100
        assert "meter" not in acc1.cmd("ovs-ofctl -O OpenFlow13 dump-flows acc1")
