"""The forwarding app's packet-in decision, as one unit: a stand-in datapath that records what is sent to it, with
Ryu's real OpenFlow 1.3 parser (no switch, no Ryu event loop)."""
from types import SimpleNamespace

import networkx as nx
from ryu.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from controller.shortest_path import FORWARD_TABLE, ShortestPathForwarding


def _datapath(dpid):
    sent = []
    return SimpleNamespace(id=dpid, ofproto=ofproto_v1_3, ofproto_parser=ofproto_v1_3_parser, send_msg=sent.append,
                           sent=sent)


def test_a_packet_in_on_a_recorded_path_puts_the_expired_flow_back():
    """Forwarding flows idle out on the switch while the controller keeps the pair's path: the next packet-in for the
    pair at a switch of that path must reinstall that switch's flow, not only forward the one packet."""
    app = ShortestPathForwarding.__new__(ShortestPathForwarding)
    app.graph = nx.DiGraph()
    app.graph.add_edge(1, 2, port=3, weight=1.0)
    app.graph.add_edge(2, 1, port=3, weight=1.0)
    app.hosts = {"00:00:00:00:00:0a": (1, 1), "00:00:00:00:00:0b": (2, 1)}
    app.paths = {("00:00:00:00:00:0a", "00:00:00:00:00:0b"): [1, 2]}
    app.datapaths = {1: _datapath(1), 2: _datapath(2)}
    app.path_policy = lambda *a: [1, 2]
    dp = app.datapaths[2]
    app._forward(dp, 3, "00:00:00:00:00:0a", "00:00:00:00:00:0b", b"frame")
    flow_mods = [m for m in dp.sent if isinstance(m, ofproto_v1_3_parser.OFPFlowMod)]
    assert len(flow_mods) == 1 and flow_mods[0].table_id == FORWARD_TABLE
    assert flow_mods[0].match["eth_src"] == "00:00:00:00:00:0a" and flow_mods[0].instructions[0].actions[0].port == 1
    assert any(isinstance(m, ofproto_v1_3_parser.OFPPacketOut) for m in dp.sent)
    assert app.datapaths[1].sent == []  # only the switch that lost its flow is touched
