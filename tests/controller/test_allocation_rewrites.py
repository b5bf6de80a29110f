"""The allocation app's VIP rewrites against a switch that reconnects: a real redis-server, Ryu's real OpenFlow 1.3
parser, stand-in datapaths that record what is sent to them (no switch, no Ryu event loop)."""
import json
from types import SimpleNamespace

from ryu.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from controller.allocation import ComputeAllocation
from netgpt import bus
from netgpt.messages import AgentHeartbeat
from netgpt.settings import Settings

USER, NODE = "00:00:00:00:00:01", "00:00:00:00:00:51"


def _datapath(dpid):
    sent = []
    return SimpleNamespace(id=dpid, ofproto=ofproto_v1_3, ofproto_parser=ofproto_v1_3_parser, send_msg=sent.append,
                           sent=sent)


def _rewrites(dp) -> int:
    return sum(isinstance(m, ofproto_v1_3_parser.OFPFlowMod) for m in dp.sent)


def test_a_reconnected_access_switch_gets_its_vip_rewrites_again(redis_client, redis_server, monkeypatch):
    fwd = SimpleNamespace(arp_table={"10.0.0.1": USER, "10.0.0.51": NODE}, hosts={USER: (1, 1), NODE: (2, 1)},
                          datapaths={1: _datapath(1), 2: _datapath(2)}, path_policy=lambda *a: [1, 2],
                          install_path=lambda *a, **k: None)
    app = ComputeAllocation.__new__(ComputeAllocation)
    app.settings = Settings(redis_port=redis_server["port"])
    app.redis, app.drops, app.allocations, app.installed = redis_client, bus.DropCounter(), {}, {}
    app.intent_times, app.first_seen = {}, {}
    app.logger = SimpleNamespace(info=lambda *a: None, warning=lambda *a: None)
    monkeypatch.setattr(ComputeAllocation, "fwd", property(lambda self: fwd))
    monkeypatch.setattr("controller.allocation.barrier", lambda app, dp: True)
    redis_client.hset(bus.Keys.CELLS, "c1", json.dumps([[1, 1]]))
    bus.write_heartbeat(redis_client, AgentHeartbeat(node_id="mec1", address="10.0.0.51:8100", cells=["c1"],
                                                     capacity_rps=5, load_rps=0), ttl_s=30)

    app.reconcile()
    first = fwd.datapaths[1]
    assert _rewrites(first) == 2  # egress and ingress rewrite at the user's access switch
    app.reconcile()
    assert _rewrites(first) == 2  # in place: nothing sent again
    fwd.datapaths[1] = _datapath(1)  # the switch reconnected, its tables empty
    app.reconcile()
    assert _rewrites(fwd.datapaths[1]) == 2
