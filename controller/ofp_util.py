"""Small OpenFlow helpers shared by the apps that change flows."""
from ryu.app.ofctl import api as ofctl_api


def barrier(app, dp) -> bool:
    """Wait until the switch has applied everything sent before (OpenFlow barrier). False if it did not answer."""
    try:
        ofctl_api.send_msg(app, dp.ofproto_parser.OFPBarrierRequest(dp), reply_cls=dp.ofproto_parser.OFPBarrierReply)
        return True
    except Exception as exc:  # a switch that went away mid-change: the topology change re-routes anyway
        app.logger.warning("barrier to %s failed: %s", dp.id, exc)
        return False


def flow_mod(dp, priority, match, actions, cookie=0, command=None, idle_timeout=0, table_id=0, goto_table=None,
             meter_id=None):
    """An OFPFlowMod in table `table_id`: [meter], apply `actions`, [go to `goto_table`]."""
    parser, ofp = dp.ofproto_parser, dp.ofproto
    inst = [parser.OFPInstructionMeter(meter_id)] if meter_id else []
    inst += [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)] if actions else []
    inst += [parser.OFPInstructionGotoTable(goto_table)] if goto_table is not None else []
    return parser.OFPFlowMod(datapath=dp, table_id=table_id, cookie=cookie, priority=priority, match=match,
                             instructions=inst,
                             command=ofp.OFPFC_ADD if command is None else command, idle_timeout=idle_timeout,
                             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY)
