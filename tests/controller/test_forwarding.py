"""The forwarding app on stand-in switches (tests/controller/fakes.py): its packet-in decisions and the interface the
other apps use."""
import networkx as nx
import pytest
from ryu.lib.packet import arp, packet
from ryu.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from netgpt.controller.shortest_path import FORWARD_COOKIE, FORWARD_TABLE
from tests.controller.fakes import FakeNetwork, arp_request, ip_frame, out_port

A, B = "00:00:00:00:00:0a", "00:00:00:00:00:0b"


@pytest.fixture
def net(forwarding):
    """Two switches, 1 -port 3- -port 3- 2; host A on 1:1, host B on 2:1."""
    net = FakeNetwork(forwarding)
    net.switch(1, [1, 3])
    net.switch(2, [1, 3])
    net.link(1, 3, 2, 3)
    net.host(A, "10.0.0.10", 1, 1)
    net.host(B, "10.0.0.11", 2, 1)
    net.clear()
    return net


def test_a_packet_in_on_a_recorded_path_puts_the_expired_flow_back(net):
    """Forwarding flows idle out on the switch while the controller keeps the pair's path: the next packet-in for the
    pair at a switch of that path must reinstall that switch's flow, not only forward the one packet."""
    net.fwd.install_path(A, B, [1, 2])
    net.clear()
    net.packet_in(2, 3, ip_frame(A, B))  # switch 2 lost its flow; the packet arrives from switch 1
    dp = net.datapaths[2]
    flow_mods = [m for m in dp.sent if isinstance(m, ofproto_v1_3_parser.OFPFlowMod)]
    assert len(flow_mods) == 1 and flow_mods[0].table_id == FORWARD_TABLE
    assert flow_mods[0].match["eth_src"] == A and out_port(flow_mods[0]) == 1
    assert any(isinstance(m, ofproto_v1_3_parser.OFPPacketOut) for m in dp.sent)
    assert net.datapaths[1].sent == []  # only the switch that lost its flow is touched


def test_a_new_pair_is_installed_from_the_destination_backwards(net):
    net.packet_in(1, 1, ip_frame(A, B))
    assert net.pairs_installed() == [((A, B), [2, 1])]
    assert [out_port(m) for _, m in net.flow_mods()] == [1, 3]
    assert net.fwd.paths[(A, B)] == [1, 2]


def test_a_link_weight_changes_both_directions_and_drops_every_forwarding_flow(net):
    net.fwd.install_path(A, B, [1, 2])
    net.clear()
    net.fwd.set_link_weight(2, 1, 7.0)
    assert net.fwd.graph[1][2]["weight"] == net.fwd.graph[2][1]["weight"] == 7.0
    deletes = net.flow_mods()
    assert sorted(dpid for dpid, _ in deletes) == [1, 2]
    assert all(m.command == ofproto_v1_3.OFPFC_DELETE and m.cookie == FORWARD_COOKIE
               and m.cookie_mask == 0xFFFF_FFFF_FFFF_FFFF for _, m in deletes)
    assert net.fwd.paths == {}  # re-installed on demand
    with pytest.raises(KeyError):
        net.fwd.set_link_weight(1, 9, 2.0)


def test_a_proxy_arp_address_is_answered_by_the_controller(net):
    net.fwd.add_proxy_arp("10.0.0.200", "02:4e:47:00:00:c8")
    net.clear()
    net.packet_in(1, 1, arp_request(A, "10.0.0.10", "10.0.0.200"))
    (dpid, out), = net.log
    reply = packet.Packet(out.data).get_protocol(arp.arp)
    assert dpid == 1 and out.actions[0].port == 1
    assert reply.opcode == arp.ARP_REPLY and reply.src_ip == "10.0.0.200" and reply.src_mac == "02:4e:47:00:00:c8"


def test_other_apps_get_read_only_views(net):
    fwd = net.fwd
    for view in (fwd.hosts, fwd.arp_table, fwd.datapaths, fwd.paths, fwd.switch_ports):
        with pytest.raises(TypeError):
            view["x"] = 1
    with pytest.raises(nx.NetworkXError):
        fwd.graph.add_edge(1, 9)
    assert fwd.hosts[A] == (1, 1) and fwd.arp_table["10.0.0.11"] == B and set(fwd.graph.edges) == {(1, 2), (2, 1)}


def test_a_restarted_controller_publishes_its_own_view_at_once(settings, redis_client):
    """The last run's view in Redis names switches and links this run has not discovered: a new forwarding app must
    replace it before any switch connects (keeping the hosts it restores from it), or a caller waiting for discovery
    takes the old links for discovered ones and sends traffic that has no path yet."""
    import json

    from netgpt.controller.shortest_path import ShortestPathForwarding
    from netgpt.core import bus

    redis_client.set(bus.Keys.TOPOLOGY, json.dumps({
        "switches": [1, 2], "links": [{"src": 1, "dst": 2, "port": 3, "weight": 1.0}],
        "hosts": {A: [1, 1]}, "arp": {"10.0.0.10": A}}))
    fwd = ShortestPathForwarding(settings=settings, redis=redis_client)
    view = json.loads(redis_client.get(bus.Keys.TOPOLOGY))
    assert view["switches"] == [] and view["links"] == []
    assert view["hosts"] == {A: [1, 1]} and view["arp"] == {"10.0.0.10": A} and fwd.hosts[A] == (1, 1)
