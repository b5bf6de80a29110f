"""Topology discovery (LLDP, via ryu.topology) and shortest-path forwarding with link weights.

Loops are safe: broadcast and unknown destinations are never flooded between switches. ARP requests for a known IP are
answered by the controller (proxy ARP); anything else without a known destination is sent out of the *edge* ports only
(switch ports without a discovered link), once per switch. Known destinations get per-pair flows (eth_src, eth_dst)
along a loop-free path: the weighted shortest path, unless a path policy (traffic engineering) picks another of the k
shortest. In ecmp mode (Settings.te_mode) a pair goes over all its equal-cost shortest paths at once: where a switch
has several equal-cost next hops, the pair's entry outputs to an OpenFlow 1.3 SELECT group of those ports, and the
switch hashes each flow onto one of them (the datacenter ECMP baseline of the TE benchmark).

State is plain: a networkx graph of switches (edge attribute `port` = output port, `weight`), and where each host is.
The current view is written to Redis (netgpt:topology) whenever it changes, for operators and tests.
"""
import json
import math
from types import MappingProxyType
from typing import Callable

import networkx as nx
import redis
from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from ryu.lib.packet import arp, ethernet, ether_types, packet
from ryu.topology import event as topo_event

from netgpt.controller.base import NetgptApp
from netgpt.controller.ofp_util import barrier_request, delete_flows, delete_group, flow_mod, select_group
from netgpt.core import bus

app_manager.require_app("ryu.topology.switches", api_style=True)

POLICY_TABLE, FORWARD_TABLE = 0, 1
FORWARD_PRIORITY = 10
FORWARD_COOKIE = 0x4E47_0001  # "NG" + 1: lets us delete exactly our forwarding flows when the topology changes
FLOW_IDLE_TIMEOUT_S = 300
FORWARD_GROUP_BASE = 0x4E47_0000  # ecmp mode's select groups take ids from here on each switch ("NG" + n)

# (src_mac, dst_mac, src_dpid, dst_dpid) -> the dpids of a path from src_dpid to dst_dpid
PathPolicy = Callable[[str, str, int, int], list[int]]


def ecmp_next_hops(graph: nx.DiGraph, dst: int, src: int | None = None) -> dict[int, list[int]]:
    """switch -> the output ports toward `dst` of every equal-cost (weighted) shortest path, sorted; with `src`, only
    the switches on one of src's shortest paths. Ordered from the switch nearest `dst` outwards, the order that
    installs them make before break. `dst` itself is not in it (its port is the host's). Weights must be positive:
    a next hop is strictly nearer to dst, so the entries can never loop."""
    if dst not in graph:
        return {}
    dist = nx.single_source_dijkstra_path_length(graph.reverse(copy=False), dst, weight="weight")

    def on_shortest(u, v) -> bool:  # sums of float weights: equal up to rounding
        return dist[v] < dist[u] and math.isclose(dist[u], graph[u][v]["weight"] + dist[v], rel_tol=1e-9)

    nexts = {u: [v for v in graph.successors(u) if v in dist and on_shortest(u, v)] for u in dist if u != dst}
    if src is not None:
        keep, todo = set(), [src] if src in nexts else []
        while todo:
            u = todo.pop()
            if u not in keep and u != dst:
                keep.add(u)
                todo += nexts[u]
        nexts = {u: vs for u, vs in nexts.items() if u in keep}
    return {u: sorted(graph[u][v]["port"] for v in nexts[u]) for u in sorted(nexts, key=lambda u: (dist[u], u))}


class ShortestPathForwarding(NetgptApp):
    """The forwarding app. Other apps change forwarding only through this interface (they never write its state):

    read-only views   graph (networkx, structure frozen; change a weight only with set_link_weight), hosts (mac -> (dpid, port)), arp_table (ip -> mac),
                      datapaths (dpid -> connection), switch_ports (dpid -> ports), paths ((src, dst mac) -> dpids)
    shortest_path()   the weighted shortest path; choose_path() the path the current policy picks for a pair
    set_path_policy() how pairs are placed from now on (traffic engineering)
    hops(), install_path()   a path's (dpid, out port) and installing (or moving) a pair onto it, make before break
    add_proxy_arp()   an address the controller answers ARP for (the edge VIP)
    set_link_weight() a link's weight, both directions; paths are recomputed

    In ecmp mode (Settings.te_mode) pairs are spread over all their equal-cost shortest paths (see install_path);
    `paths` then holds one representative per pair, the path installed through (for a pair the app placed itself:
    shortest_path(), the one static mode would use): its first and last switch, and hence the ingress switch whose
    entry counts the pair's bytes, are those of every path the pair takes; its middle is one of them. hops() and
    install_path()'s return value are of that path only; ecmp_hops holds what was really installed.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._graph = nx.DiGraph()  # dpid -> dpid, attrs: port (out port on the source), weight
        self._graph_view = self._graph.copy(as_view=True)  # frozen, follows _graph
        self._datapaths = {}
        self._switch_ports: dict[int, set[int]] = {}
        self._hosts: dict[str, tuple[int, int]] = {}  # mac -> (dpid, port)
        self._arp: dict[str, str] = {}  # ip -> mac
        self._paths: dict[tuple[str, str], list[int]] = {}  # (src mac, dst mac) -> dpids along the installed path
        # (src mac, dst mac) -> {dpid: out ports}, what the pair's entries output to, in ecmp mode
        self._ecmp_hops: dict[tuple[str, str], dict[int, list[int]]] = {}
        self._groups: dict[int, dict[tuple[int, ...], int]] = {}  # dpid -> {out ports: select group id} on the switch
        self._path_policy: PathPolicy = self.shortest_path
        self._restore_hosts()
        # The view in Redis is this run's from now on: the last run's switches and links are not discovered yet, and
        # whoever waits for discovery (netgpt.stack.controller_feed.wait_discovered) must not take them for ours.
        self._publish_topology()

    # --- the interface for the other apps ---------------------------------------------------------------------------

    @property
    def graph(self) -> nx.DiGraph:
        return self._graph_view

    @property
    def hosts(self):
        return MappingProxyType(self._hosts)

    @property
    def arp_table(self):
        return MappingProxyType(self._arp)

    @property
    def datapaths(self):
        return MappingProxyType(self._datapaths)

    @property
    def switch_ports(self):
        return MappingProxyType(self._switch_ports)

    @property
    def paths(self):
        return MappingProxyType(self._paths)

    @property
    def ecmp_hops(self):
        """(src, dst mac) -> {dpid: the out ports its entry spreads over}, for the pairs installed in ecmp mode."""
        return MappingProxyType(self._ecmp_hops)

    def shortest_path(self, src_mac, dst_mac, src_dpid, dst_dpid) -> list[int]:
        return nx.shortest_path(self._graph, src_dpid, dst_dpid, weight="weight")

    def choose_path(self, src_mac, dst_mac, src_dpid, dst_dpid) -> list[int]:
        return self._path_policy(src_mac, dst_mac, src_dpid, dst_dpid)

    def set_path_policy(self, policy: PathPolicy) -> None:
        """Place pairs with `policy` from now on: pairs without a path, and all pairs after a topology change."""
        self._path_policy = policy

    def hops(self, path: list[int], dst_mac: str) -> list[tuple[int, int]]:
        """(dpid, output port) for each switch of a path toward dst_mac."""
        return ([(a, self._graph[a][b]["port"]) for a, b in zip(path, path[1:])]
                + [(path[-1], self._hosts[dst_mac][1])])

    def install_path(self, src_mac: str, dst_mac: str, path: list[int], barrier=None) -> list[tuple[int, int]]:
        """Install (or move) a pair onto `path`, from the destination backwards (make before break: a packet never
        reaches a switch before its flow). `barrier(dp)` may wait for each switch to confirm. Returns the hops.

        In ecmp mode a `path` that is one of the equal-cost shortest paths between its ends installs the pair on all of
        them (ecmp_hops), `path` being the representative; a longer one (a deliberate detour) only on itself."""
        pair, hops = (src_mac, dst_mac), self.hops(path, dst_mac)
        spread = self._ecmp_plan(path, dst_mac) if self.settings.te_mode == "ecmp" else None
        plan = spread or {dpid: [port] for dpid, port in reversed(hops)}
        for dpid, ports in plan.items():
            if dpid in self._datapaths:
                self._install(self._datapaths[dpid], src_mac, dst_mac, ports)
                if barrier:
                    barrier(self._datapaths[dpid])
        self._paths[pair] = list(path)
        if spread:
            self._ecmp_hops[pair] = spread
        else:
            self._ecmp_hops.pop(pair, None)
        return hops

    def _ecmp_plan(self, path: list[int], dst_mac: str) -> dict[int, list[int]] | None:
        """{dpid: out ports} over every equal-cost shortest path between path's ends, destination first; None when
        `path` is longer than those (it is then installed as it is)."""
        src, dst = path[0], path[-1]
        cost = sum(self._graph[a][b]["weight"] for a, b in zip(path, path[1:]))
        if len(path) > 1 and not math.isclose(cost, nx.shortest_path_length(self._graph, src, dst, weight="weight"),
                                              rel_tol=1e-9):
            return None
        return {dst: [self._hosts[dst_mac][1]], **ecmp_next_hops(self._graph, dst, src)}

    def add_proxy_arp(self, ip: str, mac: str) -> None:
        """Answer ARP requests for `ip` with `mac`, also for an address no host owns (a virtual IP)."""
        if self._arp.get(ip) != mac:
            self._arp[ip] = mac
            self._publish_topology()

    def set_link_weight(self, a: int, b: int, weight: float) -> None:
        """Weigh the link between switches a and b, both directions: a heavier link is avoided by new paths, and every
        pair is placed again."""
        directions = [(x, y) for x, y in ((a, b), (b, a)) if self._graph.has_edge(x, y)]
        if not directions:
            raise KeyError(f"no link {a}-{b}")
        for x, y in directions:
            self._graph[x][y]["weight"] = weight
        self._topology_changed()

    # --- state after a restart --------------------------------------------------------------------------------------

    def _restore_hosts(self):
        """After a restart, hosts that stay quiet send no packet-in; what the last run learned is the best guess
        (a host that moved is re-learned from its next packet)."""
        try:
            view = json.loads(self.redis.get(bus.Keys.TOPOLOGY) or "{}")
        except (redis.RedisError, ValueError) as exc:
            self.logger.warning("hosts not restored: %s", exc)
            return
        self._hosts = {mac: tuple(loc) for mac, loc in view.get("hosts", {}).items()}
        self._arp = dict(view.get("arp", {}))
        if self._hosts:
            self.logger.info("restored %d hosts from Redis", len(self._hosts))

    # --- topology events --------------------------------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features_handler(self, ev):
        dp = ev.msg.datapath
        parser, ofp = dp.ofproto_parser, dp.ofproto
        self._datapaths[dp.id] = dp
        self._groups.pop(dp.id, None)  # a new connection: its groups are (re)installed as pairs need them
        # Table 0 is for policy (meters, marking, VIP rewrites), which then goes to table 1; table 1 forwards.
        dp.send_msg(flow_mod(dp, 0, parser.OFPMatch(), [], table_id=POLICY_TABLE, goto_table=FORWARD_TABLE))
        dp.send_msg(flow_mod(dp, 0, parser.OFPMatch(),
                             [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)],
                             table_id=FORWARD_TABLE))

    @set_ev_cls(topo_event.EventSwitchEnter)
    def switch_enter_handler(self, ev):
        sw = ev.switch
        self._graph.add_node(sw.dp.id)
        self._switch_ports[sw.dp.id] = {p.port_no for p in sw.ports}
        self._topology_changed()

    @set_ev_cls(topo_event.EventSwitchLeave)
    def switch_leave_handler(self, ev):
        dpid = ev.switch.dp.id
        if dpid in self._graph:
            self._graph.remove_node(dpid)
        self._switch_ports.pop(dpid, None)
        self._datapaths.pop(dpid, None)
        self._groups.pop(dpid, None)
        self._hosts = {mac: loc for mac, loc in self._hosts.items() if loc[0] != dpid}
        self._topology_changed()

    @set_ev_cls(topo_event.EventPortAdd)
    def port_add_handler(self, ev):
        self._switch_ports.setdefault(ev.port.dpid, set()).add(ev.port.port_no)

    @set_ev_cls(topo_event.EventLinkAdd)
    def link_add_handler(self, ev):
        src, dst = ev.link.src, ev.link.dst
        self._graph.add_edge(src.dpid, dst.dpid, port=src.port_no, weight=1.0)
        # A "host" learned on what turned out to be an inter-switch port was a mistake of timing: forget it.
        self._hosts = {mac: loc for mac, loc in self._hosts.items()
                       if loc not in ((src.dpid, src.port_no), (dst.dpid, dst.port_no))}
        self._topology_changed()

    @set_ev_cls(topo_event.EventLinkDelete)
    def link_delete_handler(self, ev):
        src, dst = ev.link.src, ev.link.dst
        if self._graph.has_edge(src.dpid, dst.dpid):
            self._graph.remove_edge(src.dpid, dst.dpid)
        self._topology_changed()

    def _topology_changed(self):
        """Paths may have changed: drop our forwarding flows and select groups (they are re-installed on demand) and
        publish the view."""
        self._paths.clear()
        self._ecmp_hops.clear()
        for dpid, dp in self._datapaths.items():
            dp.send_msg(delete_flows(dp, FORWARD_COOKIE))
            for group_id in self._groups.pop(dpid, {}).values():
                dp.send_msg(delete_group(dp, group_id))
        self._groups.clear()
        self._publish_topology()

    def _publish_topology(self):
        view = {
            "switches": sorted(self._graph.nodes),
            "links": [{"src": a, "dst": b, "port": d["port"], "weight": d["weight"]}
                      for a, b, d in sorted(self._graph.edges(data=True))],
            "hosts": {mac: list(loc) for mac, loc in sorted(self._hosts.items())},
            "arp": dict(sorted(self._arp.items())),
        }
        try:
            self.redis.set(bus.Keys.TOPOLOGY, json.dumps(view))
        except redis.RedisError as exc:
            self.logger.warning("topology not published: %s", exc)

    # --- packets ----------------------------------------------------------------------------------------------------

    def _is_edge_port(self, dpid: int, port: int) -> bool:
        return all(d["port"] != port for _, _, d in self._graph.out_edges(dpid, data=True))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in_handler(self, ev):
        msg = ev.msg
        dp = msg.datapath
        in_port = msg.match["in_port"]
        pkt = packet.Packet(msg.data)
        eth = pkt.get_protocols(ethernet.ethernet)[0]
        if eth.ethertype == ether_types.ETH_TYPE_LLDP or eth.ethertype == ether_types.ETH_TYPE_IPV6:
            return  # LLDP is ryu.topology's; IPv6 (router solicitations etc.) is not forwarded in this network
        if self._is_edge_port(dp.id, in_port) and self._hosts.get(eth.src) != (dp.id, in_port):
            self._hosts[eth.src] = (dp.id, in_port)
            self._publish_topology()
        arp_pkt = pkt.get_protocol(arp.arp)
        if arp_pkt:
            if self._arp.get(arp_pkt.src_ip) != arp_pkt.src_mac:
                self._arp[arp_pkt.src_ip] = arp_pkt.src_mac
                self._publish_topology()
            if arp_pkt.opcode == arp.ARP_REQUEST and arp_pkt.dst_ip in self._arp:
                self._arp_reply(dp, in_port, arp_pkt)
                return
        if eth.dst in self._hosts and eth.src in self._hosts:
            self._forward(dp, in_port, eth.src, eth.dst, msg.data)
        else:
            self._flood_edges(msg.data, exclude=(dp.id, in_port))

    def _forward(self, dp, in_port, src_mac, dst_mac, data):
        """A pair's path always starts at the source host's switch, wherever the packet-in came from (a packet that
        raced a flow installation can arrive mid-path): a path recorded from the middle could loop back."""
        src_dpid, dst_dpid = self._hosts[src_mac][0], self._hosts[dst_mac][0]
        pair = (src_mac, dst_mac)
        path = self._paths.get(pair)
        try:
            if not path or path[0] != src_dpid or dp.id not in self._installed_at(pair):
                path = self.choose_path(src_mac, dst_mac, src_dpid, dst_dpid)
                self.install_path(src_mac, dst_mac, path)
            else:
                # On the pair's path and still sent here: this switch's flow is gone (idle for FLOW_IDLE_TIMEOUT_S,
                # the switch dropped it) or the packet raced its installation. Put this one flow back; an ADD of an
                # existing flow only replaces it.
                self._install(dp, src_mac, dst_mac, self._installed_at(pair)[dp.id])
            out_ports = self._installed_at(pair).get(dp.id)
            if out_ports is None:  # off the pair's paths (e.g. in flight during a move): just deliver this packet
                out_ports = [dict(self.hops(self.shortest_path(src_mac, dst_mac, dp.id, dst_dpid), dst_mac))[dp.id]]
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            self.logger.info("no path %s -> %s for %s", dp.id, dst_dpid, dst_mac)
            return
        self._packet_out(dp, in_port, self._out_actions(dp, out_ports), data)

    def _installed_at(self, pair) -> dict[int, list[int]]:
        """dpid -> the out ports of the pair's entry there: its ECMP spread, else the hops of its one path."""
        if pair in self._ecmp_hops:
            return self._ecmp_hops[pair]
        path = self._paths.get(pair)
        return {dpid: [port] for dpid, port in self.hops(path, pair[1])} if path else {}

    def _install(self, dp, src_mac, dst_mac, out_ports: list[int]):
        parser = dp.ofproto_parser
        dp.send_msg(flow_mod(dp, FORWARD_PRIORITY, parser.OFPMatch(eth_src=src_mac, eth_dst=dst_mac),
                             self._out_actions(dp, out_ports), cookie=FORWARD_COOKIE, table_id=FORWARD_TABLE,
                             idle_timeout=FLOW_IDLE_TIMEOUT_S))

    def _out_actions(self, dp, out_ports: list[int]) -> list:
        """Output to the one port, or to the select group of several (installed on the switch first)."""
        parser = dp.ofproto_parser
        if len(out_ports) == 1:
            return [parser.OFPActionOutput(out_ports[0])]
        return [parser.OFPActionGroup(self._select_group(dp, out_ports))]

    def _select_group(self, dp, out_ports: list[int]) -> int:
        """The switch's select group over these ports, shared by every pair that spreads over the same ports; a new
        one is sent before the flow that uses it, with a barrier between, so no entry ever points to a missing
        group. Its id is deleted first: after a controller restart the switch may still hold a group of that id
        with other buckets (the restart's topology change has already removed the flows that used it)."""
        groups = self._groups.setdefault(dp.id, {})
        key = tuple(sorted(out_ports))
        if key not in groups:
            groups[key] = FORWARD_GROUP_BASE + len(groups)
            dp.send_msg(delete_group(dp, groups[key]))
            dp.send_msg(select_group(dp, groups[key], key))
            dp.send_msg(barrier_request(dp))
        return groups[key]

    def _packet_out(self, dp, in_port, actions: list, data):
        parser, ofp = dp.ofproto_parser, dp.ofproto
        dp.send_msg(parser.OFPPacketOut(datapath=dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=in_port, actions=actions,
                                        data=data))

    def _flood_edges(self, data, exclude):
        for dpid, dp in self._datapaths.items():
            parser, ofp = dp.ofproto_parser, dp.ofproto
            ports = [p for p in self._switch_ports.get(dpid, ()) if self._is_edge_port(dpid, p)
                     and (dpid, p) != exclude and p <= ofp.OFPP_MAX]
            if ports:
                dp.send_msg(parser.OFPPacketOut(datapath=dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
                                                actions=[parser.OFPActionOutput(p) for p in ports], data=data))

    def _arp_reply(self, dp, in_port, req):
        mac = self._arp[req.dst_ip]
        reply = packet.Packet()
        reply.add_protocol(ethernet.ethernet(ethertype=ether_types.ETH_TYPE_ARP, dst=req.src_mac, src=mac))
        reply.add_protocol(arp.arp(opcode=arp.ARP_REPLY, src_mac=mac, src_ip=req.dst_ip, dst_mac=req.src_mac,
                                   dst_ip=req.src_ip))
        reply.serialize()
        parser, ofp = dp.ofproto_parser, dp.ofproto
        dp.send_msg(parser.OFPPacketOut(datapath=dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
                                        actions=[parser.OFPActionOutput(in_port)], data=reply.data))
