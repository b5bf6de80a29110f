"""Stand-in switches for the controller apps: datapaths that record what is sent to them (and the flow and group tables
that leaves them), with Ryu's real OpenFlow 1.3 parser, told to a real ShortestPathForwarding through the events Ryu
would deliver (switch features, switch enter, link add, packet-in). No switch and no Ryu event loop: each handler is
called as Ryu's loop would call it."""
from ryu.controller import ofp_event
from ryu.lib.packet import arp, ethernet, ether_types, ipv4, packet
from ryu.ofproto import ofproto_v1_3, ofproto_v1_3_parser as parser
from ryu.topology import event as topo_event
from ryu.topology.switches import Link, Port, Switch

BROADCAST = "ff:ff:ff:ff:ff:ff"


class FakeDatapath:
    """One switch connection. `sent` is what this switch received; the network's `log` holds every switch's messages
    in the order they were sent."""

    def __init__(self, dpid: int, log: list):
        self.id, self.ofproto, self.ofproto_parser = dpid, ofproto_v1_3, parser
        self.sent: list = []
        self._log = log
        self._xid = 0
        self.answer = None  # called with each message after it is recorded: a test's switch that replies or refuses

    def send_msg(self, msg):
        if msg.xid is None:  # as Ryu's Datapath.send_msg does
            self._xid += 1
            msg.xid = self._xid
        self.sent.append(msg)
        self._log.append((self.id, msg))
        if self.answer is not None:
            self.answer(msg)

    def table(self) -> dict[int, list]:
        """cookie -> the flow mods this switch still holds (added and not deleted since), a minimal flow table. An ADD
        replaces an entry of the same table, priority and match; a strict delete removes that one entry (of the
        cookie), a delete every entry of the cookie; deleting a group removes the entries that output to it."""
        return self._apply()[0]

    def groups(self) -> dict[int, list[int]]:
        """group id -> the output port of each bucket, for the groups this switch holds (OFPGroupMod ADD, not deleted
        since)."""
        return self._apply()[1]

    def errors(self) -> list[str]:
        """What a real switch would have refused: a group added under an id it holds, a flow that outputs to a group
        it does not hold (OFPGMFC_GROUP_EXISTS, OFPBAC_BAD_OUT_GROUP)."""
        return self._apply()[2]

    def _apply(self):
        held: dict[int, list] = {}
        groups: dict[int, list[int]] = {}
        errors: list[str] = []

        def same(a, b) -> bool:
            return (a.table_id, a.priority, dict(a.match.items())) == (b.table_id, b.priority, dict(b.match.items()))

        for m in self.sent:
            if isinstance(m, parser.OFPGroupMod):
                if m.command == ofproto_v1_3.OFPGC_ADD:
                    if m.group_id in groups:
                        errors.append(f"group {m.group_id:#x} exists")
                    else:
                        groups[m.group_id] = [b.actions[0].port for b in m.buckets]
                elif m.command == ofproto_v1_3.OFPGC_DELETE:
                    groups.pop(m.group_id, None)
                    for cookie in held:
                        held[cookie] = [x for x in held[cookie] if m.group_id not in _groups_of(x)]
                continue
            if not isinstance(m, parser.OFPFlowMod):
                continue
            if m.command == ofproto_v1_3.OFPFC_ADD:
                errors += [f"flow to missing group {g:#x}" for g in _groups_of(m) if g not in groups]
                for cookie in held:
                    held[cookie] = [x for x in held[cookie] if not same(x, m)]
                held.setdefault(m.cookie, []).append(m)
            elif m.command == ofproto_v1_3.OFPFC_DELETE_STRICT:
                held[m.cookie] = [x for x in held.get(m.cookie, []) if not same(x, m)]
            elif m.command == ofproto_v1_3.OFPFC_DELETE:
                held.pop(m.cookie, None)
        return {cookie: entries for cookie, entries in held.items() if entries}, groups, errors

    def entry(self, cookie: int, **match):
        """The flow mod this switch holds with this cookie and exactly this match, or None."""
        return next((m for m in self.table().get(cookie, []) if dict(m.match.items()) == match), None)

    def out_ports(self, flow_mod) -> list[int]:
        """Where a forwarding entry sends packets: its output port, or the ports of its group's buckets (resolved
        against the groups this switch holds now)."""
        action = flow_mod.instructions[0].actions[0]
        if isinstance(action, parser.OFPActionGroup):
            return list(self.groups().get(action.group_id, []))
        return [action.port]


def _groups_of(flow_mod) -> list[int]:
    return [a.group_id for inst in flow_mod.instructions for a in getattr(inst, "actions", [])
            if isinstance(a, parser.OFPActionGroup)]


def _ofpport(port_no: int):
    return parser.OFPPort(port_no=port_no, hw_addr="02:00:00:00:00:%02x" % (port_no % 256), name=b"p%d" % port_no,
                          config=0, state=0, curr=0, advertised=0, supported=0, peer=0, curr_speed=0, max_speed=0)


def arp_request(src_mac: str, src_ip: str, dst_ip: str) -> bytes:
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(ethertype=ether_types.ETH_TYPE_ARP, dst=BROADCAST, src=src_mac))
    pkt.add_protocol(arp.arp(opcode=arp.ARP_REQUEST, src_mac=src_mac, src_ip=src_ip, dst_mac="00:00:00:00:00:00",
                             dst_ip=dst_ip))
    pkt.serialize()
    return pkt.data


def ip_frame(src_mac: str, dst_mac: str) -> bytes:
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(ethertype=ether_types.ETH_TYPE_IP, dst=dst_mac, src=src_mac))
    pkt.add_protocol(ipv4.ipv4(src="10.0.0.1", dst="10.0.0.2", proto=17))
    pkt.serialize()
    return pkt.data


class FakeNetwork:
    def __init__(self, fwd):
        self.fwd = fwd
        self.log: list = []  # (dpid, message) for every message sent to any switch, in order
        self.datapaths: dict[int, FakeDatapath] = {}
        self.ports: dict[int, list[int]] = {}

    def switch(self, dpid: int, ports: list[int]) -> FakeDatapath:
        """A switch connects (again: a new connection, empty tables) and is discovered."""
        dp = self.datapaths[dpid] = FakeDatapath(dpid, self.log)
        self.ports[dpid] = list(ports)
        self.fwd.switch_features_handler(ofp_event.EventOFPSwitchFeatures(parser.OFPSwitchFeatures(dp, dpid)))
        sw = Switch(dp)
        for p in ports:
            sw.add_port(_ofpport(p))
        self.fwd.switch_enter_handler(topo_event.EventSwitchEnter(sw))
        return dp

    def link(self, a: int, a_port: int, b: int, b_port: int) -> None:
        """A link, discovered in both directions (LLDP reports each direction as a link of its own)."""
        for (x, xp), (y, yp) in (((a, a_port), (b, b_port)), ((b, b_port), (a, a_port))):
            src = Port(x, ofproto_v1_3, _ofpport(xp))
            dst = Port(y, ofproto_v1_3, _ofpport(yp))
            self.fwd.link_add_handler(topo_event.EventLinkAdd(Link(src, dst)))

    def unlink(self, a: int, a_port: int, b: int, b_port: int) -> None:
        """The link goes down, both directions."""
        for (x, xp), (y, yp) in (((a, a_port), (b, b_port)), ((b, b_port), (a, a_port))):
            src = Port(x, ofproto_v1_3, _ofpport(xp))
            dst = Port(y, ofproto_v1_3, _ofpport(yp))
            self.fwd.link_delete_handler(topo_event.EventLinkDelete(Link(src, dst)))

    def host(self, mac: str, ip: str, dpid: int, port: int) -> None:
        """A host sends its first packet, an ARP request: the forwarding app learns where it is and its address."""
        self.packet_in(dpid, port, arp_request(mac, ip, "10.255.255.254"))

    def packet_in(self, dpid: int, in_port: int, data: bytes) -> None:
        msg = parser.OFPPacketIn(self.datapaths[dpid], buffer_id=ofproto_v1_3.OFP_NO_BUFFER, total_len=len(data),
                                 reason=ofproto_v1_3.OFPR_NO_MATCH, table_id=1, cookie=0,
                                 match=parser.OFPMatch(in_port=in_port), data=data)
        self.fwd.packet_in_handler(ofp_event.EventOFPPacketIn(msg))

    def clear(self) -> None:
        """Forget what was sent so far (set-up traffic)."""
        self.log.clear()
        for dp in self.datapaths.values():
            dp.sent.clear()

    def flow_mods(self) -> list[tuple[int, parser.OFPFlowMod]]:
        return [(dpid, m) for dpid, m in self.log if isinstance(m, parser.OFPFlowMod)]

    def pairs_installed(self) -> list[tuple[tuple[str, str], list[int]]]:
        """Per-pair forwarding flows sent, as ((src mac, dst mac), [dpids in the order they were installed]), one
        entry per run of consecutive flows of the same pair."""
        out: list = []
        for dpid, m in self.flow_mods():
            if m.command != ofproto_v1_3.OFPFC_ADD or "eth_src" not in m.match:
                continue
            pair = (m.match["eth_src"], m.match["eth_dst"])
            if out and out[-1][0] == pair:
                out[-1][1].append(dpid)
            else:
                out.append((pair, [dpid]))
        return out


def out_port(flow_mod) -> int:
    """The output port of a forwarding flow (one apply-actions instruction with one output)."""
    return flow_mod.instructions[0].actions[0].port
