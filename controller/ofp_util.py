"""The OpenFlow messages that change a switch's tables, built in one place: every flow, meter and group the apps install
or remove goes through these helpers (as Ryu's simple_switch_13 apps share one add_flow)."""
from ryu.app.ofctl import api as ofctl_api

ALL_COOKIE_BITS = 0xFFFF_FFFF_FFFF_FFFF  # a cookie mask that makes a delete match the cookie exactly


def barrier(app, dp) -> bool:
    """Wait until the switch has applied everything sent before (OpenFlow barrier). False if it did not answer.
    Needs ryu.app.ofctl.service (each app module that uses barriers requires it)."""
    try:
        ofctl_api.send_msg(app, dp.ofproto_parser.OFPBarrierRequest(dp), reply_cls=dp.ofproto_parser.OFPBarrierReply)
        return True
    except Exception as exc:  # a switch that went away mid-change: the topology change re-routes anyway
        app.logger.warning("barrier to %s failed: %s", dp.id, exc)
        return False


def flow_mod(dp, priority, match, actions, cookie=0, command=None, idle_timeout=0, table_id=0, goto_table=None,
             meter_id=None, hard_timeout=0):
    """An OFPFlowMod in table `table_id`: [meter], apply `actions`, [go to `goto_table`]."""
    parser, ofp = dp.ofproto_parser, dp.ofproto
    inst = [parser.OFPInstructionMeter(meter_id)] if meter_id else []
    inst += [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)] if actions else []
    inst += [parser.OFPInstructionGotoTable(goto_table)] if goto_table is not None else []
    return parser.OFPFlowMod(datapath=dp, table_id=table_id, cookie=cookie, priority=priority, match=match,
                             instructions=inst,
                             command=ofp.OFPFC_ADD if command is None else command, idle_timeout=idle_timeout,
                             hard_timeout=hard_timeout, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY)


def flow_mod_from_ofctl(dp, entry: dict, cookie: int, meter_id=None):
    """An OFPFlowMod from a Ryu ofctl_rest entry (match and action dicts converted by Ryu's own ofctl_v1_3), with
    the instructions in OpenFlow order. A METER action is the instruction; its meter id is `meter_id`, which the
    caller allocated on this switch."""
    from ryu.lib import ofctl_v1_3

    actions, goto, metered = [], None, False
    for a in entry.get("actions", []):
        if a["type"] == "GOTO_TABLE":
            goto = int(a["table_id"])
        elif a["type"] == "METER":
            metered = True
        else:
            action = ofctl_v1_3.to_action(dp, a)
            if action is None:
                raise ValueError(f"unsupported action {a!r}")
            actions.append(action)
    if metered and not meter_id:
        raise ValueError("a METER action needs a meter id")
    return flow_mod(dp, int(entry.get("priority", 0)), ofctl_v1_3.to_match(dp, entry.get("match", {})), actions,
                    cookie=cookie, table_id=int(entry.get("table_id", 0)), goto_table=goto,
                    meter_id=meter_id if metered else None, idle_timeout=int(entry.get("idle_timeout", 0)),
                    hard_timeout=int(entry.get("hard_timeout", 0)))


def flow_stats(app, dp, cookie) -> list:
    """The switch's flow entries with exactly this cookie (OFPFlowStats), read back over OpenFlow."""
    parser, ofp = dp.ofproto_parser, dp.ofproto
    req = parser.OFPFlowStatsRequest(dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY, cookie, ALL_COOKIE_BITS,
                                     parser.OFPMatch())
    replies = ofctl_api.send_msg(app, req, reply_cls=parser.OFPFlowStatsReply, reply_multi=True) or []
    return [stat for reply in replies for stat in reply.body]


def delete_flows(dp, cookie):
    """An OFPFlowMod that deletes every flow with exactly this cookie, in all tables: each app marks its flows with
    its own cookie, so it removes only what it installed."""
    parser, ofp = dp.ofproto_parser, dp.ofproto
    return parser.OFPFlowMod(datapath=dp, command=ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL, cookie=cookie,
                             cookie_mask=ALL_COOKIE_BITS, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY)


def delete_flow_strict(dp, entry: dict, cookie: int):
    """A strict delete of one ofctl_rest entry: its table, priority and exact match, and only with this cookie (another
    app's or intent's entry with the same match stays)."""
    from ryu.lib import ofctl_v1_3

    msg = flow_mod(dp, int(entry.get("priority", 0)), ofctl_v1_3.to_match(dp, entry.get("match", {})), [],
                   cookie=cookie, command=dp.ofproto.OFPFC_DELETE_STRICT, table_id=int(entry.get("table_id", 0)))
    msg.cookie_mask = ALL_COOKIE_BITS
    return msg


def add_meter(dp, meter_id, rate_kbps):
    """An OpenFlow 1.3 meter that drops what exceeds `rate_kbps`. The burst is explicit, 250 ms at the rate. Measured
    with a 3 s TCP iperf through a 5 Mbit/s meter on the userspace datapath: Open vSwitch's own burst (none given)
    5.5-5.6 Mbit/s, over the cap; 100 ms 2.5 (TCP backs off); 250 ms 4.7-5.0."""
    parser, ofp = dp.ofproto_parser, dp.ofproto
    band = parser.OFPMeterBandDrop(rate=rate_kbps, burst_size=max(1, rate_kbps // 4))
    return parser.OFPMeterMod(dp, command=ofp.OFPMC_ADD, flags=ofp.OFPMF_KBPS | ofp.OFPMF_BURST, meter_id=meter_id,
                              bands=[band])


def delete_meter(dp, meter_id):
    return dp.ofproto_parser.OFPMeterMod(dp, command=dp.ofproto.OFPMC_DELETE, meter_id=meter_id)


def select_group(dp, group_id, ports):
    """An OpenFlow 1.3 SELECT group (ADD) with one equal-weight bucket per output port: the switch picks a bucket per
    flow by hashing its headers, so each flow stays on one port and different flows spread over all of them, as ECMP
    does. Buckets in the order of `ports`. Open vSwitch 3.1 (userspace, seen in tests/integration/test_ecmp.py)
    hashes symmetrically, nw_src XOR nw_dst plus TCP ports but not UDP ports: UDP flows between the same two hosts,
    and between address pairs with the same XOR, share a bucket."""
    parser, ofp = dp.ofproto_parser, dp.ofproto
    buckets = [parser.OFPBucket(weight=1, watch_port=ofp.OFPP_ANY, watch_group=ofp.OFPG_ANY,
                                actions=[parser.OFPActionOutput(port)]) for port in ports]
    return parser.OFPGroupMod(dp, command=ofp.OFPGC_ADD, type_=ofp.OFPGT_SELECT, group_id=group_id, buckets=buckets)


def delete_group(dp, group_id):
    """Delete one group. The switch also removes the flows that point to it; deleting a group it does not hold
    records no error (OpenFlow 1.3), so this also clears what an earlier controller run may have left under that id."""
    parser, ofp = dp.ofproto_parser, dp.ofproto
    return parser.OFPGroupMod(dp, command=ofp.OFPGC_DELETE, type_=ofp.OFPGT_SELECT, group_id=group_id)


def barrier_request(dp):
    """A barrier sent without waiting for its reply: the switch finishes every message before it first, which is
    enough to order messages to one switch (a group before the flows that use it)."""
    return dp.ofproto_parser.OFPBarrierRequest(dp)
