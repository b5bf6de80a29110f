"""ECMP forwarding (Settings.te_mode = "ecmp"): the equal-cost next hops on plain graphs, then the real forwarding app
on stand-in switches (the diamond 1 -> {2, 3} -> 4, port numbers = the neighbour's dpid, hosts on ports 10-12), whose
select groups the fakes hold and resolve to their buckets."""
import networkx as nx
import pytest
import ryu.lib.hub
from ryu.ofproto import ofproto_v1_3, ofproto_v1_3_parser as parser

from netgpt.controller.shortest_path import FORWARD_COOKIE, ShortestPathForwarding, ecmp_next_hops
from netgpt.controller.te import TrafficEngineering
from netgpt.core.settings import Settings
from tests.controller.fakes import FakeNetwork, ip_frame

S1, U1, S2, U2 = "00:00:00:00:00:01", "00:00:00:00:00:65", "00:00:00:00:00:02", "00:00:00:00:00:66"
HOSTS = {S1: ("10.0.0.1", 1, 10), U1: ("10.0.0.101", 4, 10), S2: ("10.0.0.2", 1, 11), U2: ("10.0.0.102", 4, 11)}
DIAMOND = ((1, 2), (2, 4), (1, 3), (3, 4))


def _graph(weights: dict) -> nx.DiGraph:
    """Links both ways, the port on each side numbered after the neighbour."""
    g = nx.DiGraph()
    for (a, b), w in weights.items():
        g.add_edge(a, b, port=b, weight=w)
        g.add_edge(b, a, port=a, weight=w)
    return g


# --- the next hops, on plain graphs -----------------------------------------------------------------------------------

def test_both_middle_switches_are_next_hops_of_the_ingress_nearest_the_destination_first():
    g = _graph(dict.fromkeys(DIAMOND, 1.0))
    assert list(ecmp_next_hops(g, 4).items()) == [(2, [4]), (3, [4]), (1, [2, 3])]
    assert ecmp_next_hops(g, 4, src=1) == {2: [4], 3: [4], 1: [2, 3]}
    assert ecmp_next_hops(g, 1, src=4) == {2: [1], 3: [1], 4: [2, 3]}


def test_a_heavier_path_is_not_used_and_src_keeps_only_the_switches_on_its_paths():
    g = _graph({**dict.fromkeys(DIAMOND, 1.0), (1, 2): 5.0})
    assert ecmp_next_hops(g, 4) == {2: [4], 3: [4], 1: [3]}  # switch 2 still reaches 4 directly
    assert ecmp_next_hops(g, 4, src=1) == {3: [4], 1: [3]}


def test_equal_costs_are_equal_up_to_float_rounding():
    """0.1 + 0.2 is 0.30000000000000004 and 0.15 + 0.15 is 0.3: the same cost."""
    g = _graph({(1, 2): 0.1, (2, 4): 0.2, (1, 3): 0.15, (3, 4): 0.15})
    assert ecmp_next_hops(g, 4, src=1)[1] == [2, 3]


def test_a_longer_mesh_spreads_at_every_fork_and_unreachable_ends_give_nothing():
    """1 -> {2, 3} -> 4 -> {5, 6} -> 7: two forks in a row, four equal paths."""
    g = _graph({(1, 2): 1, (1, 3): 1, (2, 4): 1, (3, 4): 1, (4, 5): 1, (4, 6): 1, (5, 7): 1, (6, 7): 1})
    assert ecmp_next_hops(g, 7, src=1) == {5: [7], 6: [7], 4: [5, 6], 2: [4], 3: [4], 1: [2, 3]}
    g.add_node(9)
    assert ecmp_next_hops(g, 9, src=1) == {} and ecmp_next_hops(g, 7, src=9) == {} and ecmp_next_hops(g, 42) == {}


# --- the forwarding app on stand-in switches --------------------------------------------------------------------------

@pytest.fixture
def diamond(redis_client, redis_server):
    """A fresh diamond in ecmp mode, its hosts learned, nothing forwarded yet."""
    settings = Settings(redis_port=redis_server["port"], te_mode="ecmp")
    net = FakeNetwork(ShortestPathForwarding(settings=settings, redis=redis_client))
    for dpid, neighbours in {1: [2, 3], 2: [1, 4], 3: [1, 4], 4: [2, 3]}.items():
        net.switch(dpid, neighbours + [10, 11, 12])
    for a, b in DIAMOND:
        net.link(a, b, b, a)
    for mac, (ip, dpid, port) in HOSTS.items():
        net.host(mac, ip, dpid, port)
    net.clear()
    return net


def _spread(net, src, dst) -> dict[int, list[int]]:
    """dpid -> where the pair's entry on that switch sends packets (a group resolved to its buckets' ports)."""
    out = {}
    for dpid, dp in net.datapaths.items():
        entry = dp.entry(FORWARD_COOKIE, eth_src=src, eth_dst=dst)
        if entry is not None:
            out[dpid] = dp.out_ports(entry)
    return out


def _errors(net) -> list:
    return [(dpid, e) for dpid, dp in net.datapaths.items() for e in dp.errors()]


def test_a_pair_goes_over_both_middle_switches_through_a_select_group_at_the_ingress(diamond):
    net = diamond
    net.packet_in(1, 10, ip_frame(S1, U1))
    assert _spread(net, S1, U1) == {1: [2, 3], 2: [4], 3: [4], 4: [10]}
    (group_id, ports), = net.datapaths[1].groups().items()
    assert ports == [2, 3] and net.datapaths[2].groups() == {} and _errors(net) == []
    group_mod = next(m for _, m in net.log if isinstance(m, parser.OFPGroupMod) and m.command == ofproto_v1_3.OFPGC_ADD)
    assert group_mod.type == ofproto_v1_3.OFPGT_SELECT and [b.weight for b in group_mod.buckets] == [1, 1]
    # Make before break: the egress first, then the middle switches, then the ingress; at the ingress the group is
    # (re)created and fenced off by a barrier before the flow that uses it.
    sent = [(dpid, type(m).__name__) for dpid, m in net.log]
    assert sent == [(4, "OFPFlowMod"), (2, "OFPFlowMod"), (3, "OFPFlowMod"), (1, "OFPGroupMod"), (1, "OFPGroupMod"),
                    (1, "OFPBarrierRequest"), (1, "OFPFlowMod"), (1, "OFPPacketOut")]
    packet_out = net.log[-1][1]
    assert [(type(a), a.group_id) for a in packet_out.actions] == [(parser.OFPActionGroup, group_id)]
    # The documented interface: one representative path (the static mode's shortest path), the spread beside it.
    fwd = net.fwd
    assert fwd.paths[(S1, U1)] == fwd.shortest_path(S1, U1, 1, 4) and fwd.paths[(S1, U1)] in ([1, 2, 4], [1, 3, 4])
    assert fwd.ecmp_hops[(S1, U1)] == {4: [10], 2: [4], 3: [4], 1: [2, 3]}


def test_pairs_that_spread_over_the_same_ports_share_one_group(diamond):
    net = diamond
    net.packet_in(1, 10, ip_frame(S1, U1))
    net.packet_in(1, 11, ip_frame(S2, U2))
    net.packet_in(4, 10, ip_frame(U1, S1))  # the reverse direction forks at switch 4
    adds = [dpid for dpid, m in net.log if isinstance(m, parser.OFPGroupMod) and m.command == ofproto_v1_3.OFPGC_ADD]
    assert adds == [1, 4]
    assert _spread(net, S2, U2) == {1: [2, 3], 2: [4], 3: [4], 4: [11]}
    assert _spread(net, U1, S1) == {4: [2, 3], 2: [1], 3: [1], 1: [10]} and _errors(net) == []


def test_an_expired_entry_on_a_middle_switch_is_put_back_alone(diamond):
    net = diamond
    net.packet_in(1, 10, ip_frame(S1, U1))
    net.clear()
    net.packet_in(3, 1, ip_frame(S1, U1))  # switch 3 lost its entry; the packet came from switch 1
    assert [(dpid, type(m).__name__) for dpid, m in net.log] == [(3, "OFPFlowMod"), (3, "OFPPacketOut")]
    assert net.datapaths[3].out_ports(net.log[0][1]) == [4]


def test_a_topology_change_removes_the_groups_and_the_pair_is_rebuilt_on_what_is_left(diamond):
    net = diamond
    net.packet_in(1, 10, ip_frame(S1, U1))
    net.unlink(1, 2, 2, 1)
    assert all(dp.groups() == {} and dp.table().get(FORWARD_COOKIE) is None for dp in net.datapaths.values())
    assert net.fwd.paths == {} and net.fwd.ecmp_hops == {}
    net.packet_in(1, 10, ip_frame(S1, U1))
    assert _spread(net, S1, U1) == {1: [3], 3: [4], 4: [10]} and net.datapaths[1].groups() == {}
    net.link(1, 2, 2, 1)  # back: both paths again, a group again (under a reused id: deleted first, no error)
    net.packet_in(1, 10, ip_frame(S1, U1))
    assert _spread(net, S1, U1) == {1: [2, 3], 2: [4], 3: [4], 4: [10]} and _errors(net) == []


def test_a_heavier_link_narrows_the_spread_to_the_remaining_shortest_path(diamond):
    net = diamond
    net.fwd.set_link_weight(2, 4, 3.0)
    net.packet_in(1, 10, ip_frame(S1, U1))
    assert _spread(net, S1, U1) == {1: [3], 3: [4], 4: [10]}


def test_a_reconnected_switch_gets_its_group_again(diamond):
    net = diamond
    net.packet_in(1, 10, ip_frame(S1, U1))
    net.switch(1, [2, 3, 10, 11, 12])  # a new connection: empty tables; the links are rediscovered
    net.link(1, 2, 2, 1)
    net.link(1, 3, 3, 1)
    net.packet_in(1, 10, ip_frame(S1, U1))
    assert list(net.datapaths[1].groups().values()) == [[2, 3]]
    assert _spread(net, S1, U1) == {1: [2, 3], 2: [4], 3: [4], 4: [10]} and _errors(net) == []


def test_install_path_spreads_a_shortest_path_and_keeps_a_detour_as_it_is(diamond):
    """Other apps (allocation) install pairs with install_path(choose_path(...)): a shortest path spreads like a
    packet-in's; a longer path, a deliberate detour, is installed on its own."""
    net = diamond
    fwd = net.fwd
    assert fwd.install_path(S1, U1, [1, 3, 4]) == [(1, 3), (3, 4), (4, 10)]  # the representative's hops
    assert fwd.paths[(S1, U1)] == [1, 3, 4] and _spread(net, S1, U1) == {1: [2, 3], 2: [4], 3: [4], 4: [10]}
    fwd.set_link_weight(1, 2, 4.0)
    fwd.install_path(S1, U1, [1, 2, 4])
    assert (S1, U1) not in fwd.ecmp_hops and _spread(net, S1, U1) == {1: [2], 2: [4], 4: [10]}


def test_static_mode_installs_no_group(redis_client, redis_server):
    net = FakeNetwork(ShortestPathForwarding(settings=Settings(redis_port=redis_server["port"], te_mode="static"),
                                             redis=redis_client))
    for dpid, neighbours in {1: [2, 3], 2: [1, 4], 3: [1, 4], 4: [2, 3]}.items():
        net.switch(dpid, neighbours + [10])
    for a, b in DIAMOND:
        net.link(a, b, b, a)
    net.host(S1, "10.0.0.1", 1, 10)
    net.host(U1, "10.0.0.101", 4, 10)
    net.packet_in(1, 10, ip_frame(S1, U1))
    assert not any(isinstance(m, parser.OFPGroupMod) for _, m in net.log)
    assert len(_spread(net, S1, U1)) == 3 and net.fwd.ecmp_hops == {}


@pytest.mark.parametrize("mode, loops", [("ecmp", False), ("static", False), ("reactive", True)])
def test_te_moves_nothing_in_ecmp_mode(mode, loops, diamond, redis_client, redis_server, monkeypatch):
    """TE's loops (the control loop that moves pairs, the consumer of intents and forecasts) do not start in the
    baselines."""
    spawned = []
    monkeypatch.setattr(ryu.lib.hub, "spawn", lambda fn, *a, **kw: spawned.append(getattr(fn, "__name__", fn)))
    te = TrafficEngineering(settings=Settings(redis_port=redis_server["port"], te_mode=mode), redis=redis_client,
                            forwarding=diamond.fwd)
    te.start()
    assert bool({"_consume", "_control_loop"} & set(spawned)) is loops
