"""Topology discovery (LLDP, via ryu.topology) and shortest-path forwarding with link weights.

Loops are safe: broadcast and unknown destinations are never flooded between switches. ARP requests for a known IP are
answered by the controller (proxy ARP); anything else without a known destination is sent out of the *edge* ports only
(switch ports without a discovered link), once per switch. Known destinations get per-pair flows (eth_src, eth_dst)
along a loop-free path: the weighted shortest path, unless a path policy (traffic engineering) picks another of the k
shortest.

State is plain: a networkx graph of switches (edge attribute `port` = output port, `weight`), and where each host is.
The current view is written to Redis (netgpt:topology) whenever it changes, for operators and tests.
"""
import json
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
from netgpt.controller.ofp_util import delete_flows, flow_mod
from netgpt.core import bus

app_manager.require_app("ryu.topology.switches", api_style=True)

POLICY_TABLE, FORWARD_TABLE = 0, 1
FORWARD_PRIORITY = 10
FORWARD_COOKIE = 0x4E47_0001  # "NG" + 1: lets us delete exactly our forwarding flows when the topology changes
FLOW_IDLE_TIMEOUT_S = 300

# (src_mac, dst_mac, src_dpid, dst_dpid) -> the dpids of a path from src_dpid to dst_dpid
PathPolicy = Callable[[str, str, int, int], list[int]]


class ShortestPathForwarding(NetgptApp):
    """The forwarding app. Other apps change forwarding only through this interface (they never write its state):

    read-only views   graph (networkx, structure frozen; change a weight only with set_link_weight), hosts (mac -> (dpid, port)), arp_table (ip -> mac),
                      datapaths (dpid -> connection), switch_ports (dpid -> ports), paths ((src, dst mac) -> dpids)
    shortest_path()   the weighted shortest path; choose_path() the path the current policy picks for a pair
    set_path_policy() how pairs are placed from now on (traffic engineering)
    hops(), install_path()   a path's (dpid, out port) and installing (or moving) a pair onto it, make before break
    add_proxy_arp()   an address the controller answers ARP for (the edge VIP)
    set_link_weight() a link's weight, both directions; paths are recomputed
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
        self._path_policy: PathPolicy = self.shortest_path
        self._restore_hosts()

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
        reaches a switch before its flow). `barrier(dp)` may wait for each switch to confirm. Returns the hops."""
        hops = self.hops(path, dst_mac)
        for dpid, out_port in reversed(hops):
            if dpid in self._datapaths:
                self._install(self._datapaths[dpid], src_mac, dst_mac, out_port)
                if barrier:
                    barrier(self._datapaths[dpid])
        self._paths[(src_mac, dst_mac)] = list(path)
        return hops

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
        """Paths may have changed: drop our forwarding flows (they are re-installed on demand) and publish the view."""
        self._paths.clear()
        for dp in self._datapaths.values():
            dp.send_msg(delete_flows(dp, FORWARD_COOKIE))
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
        path = self._paths.get((src_mac, dst_mac))
        try:
            if not path or path[0] != src_dpid or dp.id not in path:
                path = self.choose_path(src_mac, dst_mac, src_dpid, dst_dpid)
                self.install_path(src_mac, dst_mac, path)
            else:
                # On the pair's path and still sent here: this switch's flow is gone (idle for FLOW_IDLE_TIMEOUT_S,
                # the switch dropped it) or the packet raced its installation. Put this one flow back; an ADD of an
                # existing flow only replaces it.
                self._install(dp, src_mac, dst_mac, dict(self.hops(path, dst_mac))[dp.id])
            if dp.id not in path:  # off the pair's path (e.g. in flight during a move): just deliver this packet
                path = self.shortest_path(src_mac, dst_mac, dp.id, dst_dpid)
        except (nx.NetworkXNoPath, nx.NodeNotFound):
            self.logger.info("no path %s -> %s for %s", dp.id, dst_dpid, dst_mac)
            return
        out_port = dict(self.hops(path, dst_mac))[dp.id]
        self._packet_out(dp, in_port, out_port, data)

    def _install(self, dp, src_mac, dst_mac, out_port):
        parser = dp.ofproto_parser
        dp.send_msg(flow_mod(dp, FORWARD_PRIORITY, parser.OFPMatch(eth_src=src_mac, eth_dst=dst_mac),
                             [parser.OFPActionOutput(out_port)], cookie=FORWARD_COOKIE, table_id=FORWARD_TABLE,
                             idle_timeout=FLOW_IDLE_TIMEOUT_S))

    def _packet_out(self, dp, in_port, out_port, data):
        parser, ofp = dp.ofproto_parser, dp.ofproto
        dp.send_msg(parser.OFPPacketOut(datapath=dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=in_port,
                                        actions=[parser.OFPActionOutput(out_port)], data=data))

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
