"""The allocation app's VIP rewrites against a switch that reconnects: a real redis-server, the real forwarding app
on stand-in switches (tests/controller/fakes.py), no Ryu event loop."""
import json
import time

import pytest
from ryu.ofproto import ofproto_v1_3_parser

from netgpt.controller.allocation import REWRITE_PRIORITY, ComputeAllocation
from netgpt.controller.shortest_path import FORWARD_PRIORITY, FORWARD_TABLE, POLICY_TABLE
from netgpt.core import bus
from netgpt.core.messages import AgentHeartbeat
from tests.controller.fakes import FakeNetwork

USER, NODE = "00:00:00:00:00:01", "00:00:00:00:00:51"


def _rewrites(dp) -> list:
    return [m for m in dp.sent if isinstance(m, ofproto_v1_3_parser.OFPFlowMod) and m.priority == REWRITE_PRIORITY]


@pytest.fixture
def net(forwarding):
    """The user's access switch 1 and the MEC node's switch 2, linked by their ports 2."""
    net = FakeNetwork(forwarding)
    net.switch(1, [1, 2])
    net.switch(2, [1, 2])
    net.link(1, 2, 2, 2)
    net.host(USER, "10.0.0.1", 1, 1)
    net.host(NODE, "10.0.0.51", 2, 1)
    net.clear()
    return net


def test_a_reconnected_access_switch_gets_its_vip_rewrites_again(net, settings, redis_client):
    app = ComputeAllocation(settings=settings, redis=redis_client, forwarding=net.fwd)
    redis_client.hset(bus.Keys.CELLS, "c1", json.dumps([[1, 1]]))
    bus.write_heartbeat(redis_client, AgentHeartbeat(node_id="mec1", address="10.0.0.51:8100", cells=["c1"],
                                                     capacity_rps=5, load_rps=0), ttl_s=30)

    app.reconcile()
    assert net.fwd.arp_table[settings.edge_vip] == settings.edge_vip_mac  # users can resolve the VIP
    first = net.datapaths[1]
    egress, ingress = _rewrites(first)  # egress and ingress rewrite at the user's access switch, return path first
    assert egress.match["ipv4_src"] == "10.0.0.51" and ingress.match["ipv4_dst"] == settings.edge_vip
    assert ingress.instructions[-1].table_id == FORWARD_TABLE
    # The paths between user and node first, both ways, then the rewrites (return path first).
    assert net.fwd.paths[(USER, NODE)] == [1, 2] and net.fwd.paths[(NODE, USER)] == [2, 1]
    assert [(m.table_id, m.priority) for _, m in net.flow_mods()] == \
        [(FORWARD_TABLE, FORWARD_PRIORITY)] * 4 + [(POLICY_TABLE, REWRITE_PRIORITY)] * 2
    net.clear()
    app.reconcile()
    assert net.flow_mods() == []  # in place: nothing sent again
    net.switch(1, [1, 2])  # the switch reconnected, its tables empty
    app.reconcile()
    assert net.datapaths[1] is not first and len(_rewrites(net.datapaths[1])) == 2


def test_a_request_rate_forecast_for_an_unknown_cell_is_a_counted_drop(settings, redis_client):
    """The forecast loop's 'cell:<c>:requests_rps' counts for a published cell; one for a cell nobody published is a
    drop, counted by reason in the app and in Redis; a link forecast is not allocation's and changes nothing."""
    from netgpt.core import bus
    from netgpt.core.messages import Forecast

    redis_client.hset(bus.Keys.CELLS, "c1", "[[1, 10]]")
    app = ComputeAllocation(settings=settings, redis=redis_client, forwarding=None)
    for i, target in enumerate(("cell:c1:requests_rps", "cell:c7:requests_rps", "link:1-2:tx_bps")):
        fc = Forecast(source="t", target=target, origin_ts=time.time(), step_s=10, values=[4.0], model="t")
        app._count_intent(bus.Streams.FORECASTS, f"{i}-0", bus.entry_fields(fc))
    assert set(app.placement.forecast_demand) == {"c1"}
    assert app.drops.counts == {"unknown forecast target": 1}
    assert redis_client.hget(bus.Keys.DROPS, "ComputeAllocation:unknown forecast target") == "1"
