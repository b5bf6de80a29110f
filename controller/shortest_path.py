"""Topology discovery (LLDP, via ryu.topology) and shortest-path forwarding with link weights.

Loops are safe: broadcast and unknown destinations are never flooded between switches. ARP requests for a known IP are
answered by the controller (proxy ARP); anything else without a known destination is sent out of the *edge* ports only
(switch ports without a discovered link), once per switch. Known destinations get per-pair flows (eth_src, eth_dst)
along a loop-free path: the weighted shortest path, unless a path policy (traffic engineering) picks another of the k
shortest. `paths` records each pair's path, so other apps can see and move traffic.

State is plain: a networkx graph of switches (edge attribute `port` = output port, `weight`), and where each host is.
The current view is written to Redis (netgpt:topology) whenever it changes, for operators and tests.
"""
import json

import networkx as nx
import redis
from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from ryu.lib.packet import arp, ethernet, ether_types, packet
from ryu.ofproto import ofproto_v1_3
from ryu.topology import event as topo_event

from netgpt import bus
from netgpt.settings import get_settings

app_manager.require_app("ryu.topology.switches", api_style=True)

POLICY_TABLE, FORWARD_TABLE = 0, 1
FORWARD_PRIORITY = 10
FORWARD_COOKIE = 0x4E47_0001  # "NG" + 1: lets us delete exactly our forwarding flows when the topology changes
FLOW_IDLE_TIMEOUT_S = 300


class ShortestPathForwarding(app_manager.RyuApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.settings = get_settings()
        self.redis = bus.connect(self.settings)
        self.graph = nx.DiGraph()  # dpid -> dpid, attrs: port (out port on the source), weight
        self.datapaths = {}
        self.switch_ports: dict[int, set[int]] = {}
        self.hosts: dict[str, tuple[int, int]] = {}  # mac -> (dpid, port)
        self.arp_table: dict[str, str] = {}  # ip -> mac
        self.paths: dict[tuple[str, str], list[int]] = {}  # (src mac, dst mac) -> dpids along the installed path
        # Traffic engineering may replace this: (src_mac, dst_mac, src_dpid, dst_dpid) -> path of dpids.
        self.path_policy = self.shortest_path
        self._restore_hosts()

    def _restore_hosts(self):
        """After a restart, hosts that stay quiet send no packet-in; what the last run learned is the best guess
        (a host that moved is re-learned from its next packet)."""
        try:
            view = json.loads(self.redis.get(bus.Keys.TOPOLOGY) or "{}")
        except (redis.RedisError, ValueError) as exc:
            self.logger.warning("hosts not restored: %s", exc)
            return
        self.hosts = {mac: tuple(loc) for mac, loc in view.get("hosts", {}).items()}
        self.arp_table = dict(view.get("arp", {}))
        if self.hosts:
            self.logger.info("restored %d hosts from Redis", len(self.hosts))

    # --- topology events --------------------------------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features_handler(self, ev):
        dp = ev.msg.datapath
        parser, ofp = dp.ofproto_parser, dp.ofproto
        self.datapaths[dp.id] = dp
        # Table 0 is for policy (meters, marking, VIP rewrites), which then goes to table 1; table 1 forwards.
        dp.send_msg(parser.OFPFlowMod(datapath=dp, table_id=POLICY_TABLE, priority=0, match=parser.OFPMatch(),
                                      instructions=[parser.OFPInstructionGotoTable(FORWARD_TABLE)]))
        inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS,
                                             [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)])]
        dp.send_msg(parser.OFPFlowMod(datapath=dp, table_id=FORWARD_TABLE, priority=0, match=parser.OFPMatch(),
                                      instructions=inst))

    @set_ev_cls(topo_event.EventSwitchEnter)
    def switch_enter_handler(self, ev):
        sw = ev.switch
        self.graph.add_node(sw.dp.id)
        self.switch_ports[sw.dp.id] = {p.port_no for p in sw.ports}
        self._topology_changed()

    @set_ev_cls(topo_event.EventSwitchLeave)
    def switch_leave_handler(self, ev):
        dpid = ev.switch.dp.id
        if dpid in self.graph:
            self.graph.remove_node(dpid)
        self.switch_ports.pop(dpid, None)
        self.datapaths.pop(dpid, None)
        self.hosts = {mac: loc for mac, loc in self.hosts.items() if loc[0] != dpid}
        self._topology_changed()

    @set_ev_cls(topo_event.EventPortAdd)
    def port_add_handler(self, ev):
        self.switch_ports.setdefault(ev.port.dpid, set()).add(ev.port.port_no)

    @set_ev_cls(topo_event.EventLinkAdd)
    def link_add_handler(self, ev):
        src, dst = ev.link.src, ev.link.dst
        self.graph.add_edge(src.dpid, dst.dpid, port=src.port_no, weight=1.0)
        # A "host" learned on what turned out to be an inter-switch port was a mistake of timing: forget it.
        self.hosts = {mac: loc for mac, loc in self.hosts.items()
                      if loc not in ((src.dpid, src.port_no), (dst.dpid, dst.port_no))}
        self._topology_changed()

    @set_ev_cls(topo_event.EventLinkDelete)
    def link_delete_handler(self, ev):
        src, dst = ev.link.src, ev.link.dst
        if self.graph.has_edge(src.dpid, dst.dpid):
            self.graph.remove_edge(src.dpid, dst.dpid)
        self._topology_changed()

    def _topology_changed(self):
        """Paths may have changed: drop our forwarding flows (they are re-installed on demand) and publish the view."""
        self.paths.clear()
        for dp in self.datapaths.values():
            parser, ofp = dp.ofproto_parser, dp.ofproto
            dp.send_msg(parser.OFPFlowMod(datapath=dp, command=ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL,
                                          cookie=FORWARD_COOKIE, cookie_mask=0xFFFFFFFFFFFFFFFF,
                                          out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY))
        self._publish_topology()

    def _publish_topology(self):
        view = {
            "switches": sorted(self.graph.nodes),
            "links": [{"src": a, "dst": b, "port": d["port"], "weight": d["weight"]}
                      for a, b, d in sorted(self.graph.edges(data=True))],
            "hosts": {mac: list(loc) for mac, loc in sorted(self.hosts.items())},
            "arp": dict(sorted(self.arp_table.items())),
        }
        try:
            self.redis.set(bus.Keys.TOPOLOGY, json.dumps(view))
        except redis.RedisError as exc:
            self.logger.warning("topology not published: %s", exc)

    def set_link_weight(self, src: int, dst: int, weight: float) -> None:
        """For traffic engineering: a heavier link is avoided by new paths."""
        if not self.graph.has_edge(src, dst):
            raise KeyError(f"no link {src}->{dst}")
        self.graph[src][dst]["weight"] = weight
        self._topology_changed()

    # --- packets ----------------------------------------------------------------------------------------------------

    def _is_edge_port(self, dpid: int, port: int) -> bool:
        return all(d["port"] != port for _, _, d in self.graph.out_edges(dpid, data=True))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in_handler(self, ev):
        msg = ev.msg
        dp = msg.datapath
        in_port = msg.match["in_port"]
        pkt = packet.Packet(msg.data)
        eth = pkt.get_protocols(ethernet.ethernet)[0]
        if eth.ethertype == ether_types.ETH_TYPE_LLDP or eth.ethertype == ether_types.ETH_TYPE_IPV6:
            return  # LLDP is ryu.topology's; IPv6 (router solicitations etc.) is not forwarded in this network
        if self._is_edge_port(dp.id, in_port) and self.hosts.get(eth.src) != (dp.id, in_port):
            self.hosts[eth.src] = (dp.id, in_port)
            self._publish_topology()
        arp_pkt = pkt.get_protocol(arp.arp)
        if arp_pkt:
            if self.arp_table.get(arp_pkt.src_ip) != arp_pkt.src_mac:
                self.arp_table[arp_pkt.src_ip] = arp_pkt.src_mac
                self._publish_topology()
            if arp_pkt.opcode == arp.ARP_REQUEST and arp_pkt.dst_ip in self.arp_table:
                self._arp_reply(dp, in_port, arp_pkt)
                return
        if eth.dst in self.hosts and eth.src in self.hosts:
            self._forward(dp, in_port, eth.src, eth.dst, msg.data)
        else:
            self._flood_edges(msg.data, exclude=(dp.id, in_port))

    def shortest_path(self, src_mac, dst_mac, src_dpid, dst_dpid) -> list[int]:
        return nx.shortest_path(self.graph, src_dpid, dst_dpid, weight="weight")

    def _forward(self, dp, in_port, src_mac, dst_mac, data):
        """A pair's path always starts at the source host's switch, wherever the packet-in came from (a packet that
        raced a flow installation can arrive mid-path): a path recorded from the middle could loop back."""
        src_dpid, dst_dpid = self.hosts[src_mac][0], self.hosts[dst_mac][0]
        path = self.paths.get((src_mac, dst_mac))
        try:
            if not path or path[0] != src_dpid or dp.id not in path:
                path = self.path_policy(src_mac, dst_mac, src_dpid, dst_dpid)
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

    def hops(self, path: list[int], dst_mac: str) -> list[tuple[int, int]]:
        """(dpid, output port) for each switch of a path toward dst_mac."""
        return [(a, self.graph[a][b]["port"]) for a, b in zip(path, path[1:])] + [(path[-1], self.hosts[dst_mac][1])]

    def install_path(self, src_mac: str, dst_mac: str, path: list[int], barrier=None) -> list[tuple[int, int]]:
        """Install (or move) a pair onto `path`, from the destination backwards (make before break: a packet never
        reaches a switch before its flow). `barrier(dp)` may wait for each switch to confirm. Returns the hops."""
        hops = self.hops(path, dst_mac)
        for dpid, out_port in reversed(hops):
            if dpid in self.datapaths:
                self._install(self.datapaths[dpid], src_mac, dst_mac, out_port)
                if barrier:
                    barrier(self.datapaths[dpid])
        self.paths[(src_mac, dst_mac)] = list(path)
        return hops

    def _install(self, dp, src_mac, dst_mac, out_port):
        parser, ofp = dp.ofproto_parser, dp.ofproto
        inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionOutput(out_port)])]
        dp.send_msg(parser.OFPFlowMod(datapath=dp, table_id=FORWARD_TABLE, cookie=FORWARD_COOKIE,
                                      priority=FORWARD_PRIORITY,
                                      match=parser.OFPMatch(eth_src=src_mac, eth_dst=dst_mac), instructions=inst,
                                      idle_timeout=FLOW_IDLE_TIMEOUT_S))

    def _packet_out(self, dp, in_port, out_port, data):
        parser, ofp = dp.ofproto_parser, dp.ofproto
        dp.send_msg(parser.OFPPacketOut(datapath=dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=in_port,
                                        actions=[parser.OFPActionOutput(out_port)], data=data))

    def _flood_edges(self, data, exclude):
        for dpid, dp in self.datapaths.items():
            parser, ofp = dp.ofproto_parser, dp.ofproto
            ports = [p for p in self.switch_ports.get(dpid, ()) if self._is_edge_port(dpid, p)
                     and (dpid, p) != exclude and p <= ofp.OFPP_MAX]
            if ports:
                dp.send_msg(parser.OFPPacketOut(datapath=dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
                                                actions=[parser.OFPActionOutput(p) for p in ports], data=data))

    def _arp_reply(self, dp, in_port, req):
        mac = self.arp_table[req.dst_ip]
        reply = packet.Packet()
        reply.add_protocol(ethernet.ethernet(ethertype=ether_types.ETH_TYPE_ARP, dst=req.src_mac, src=mac))
        reply.add_protocol(arp.arp(opcode=arp.ARP_REPLY, src_mac=mac, src_ip=req.dst_ip, dst_mac=req.src_mac,
                                   dst_ip=req.src_ip))
        reply.serialize()
        parser, ofp = dp.ofproto_parser, dp.ofproto
        dp.send_msg(parser.OFPPacketOut(datapath=dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
                                        actions=[parser.OFPActionOutput(in_port)], data=reply.data))
