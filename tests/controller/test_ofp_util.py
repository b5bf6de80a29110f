"""The OpenFlow message helpers on Ryu's real OpenFlow 1.3 parser."""
import struct

from ryu.ofproto import ofproto_v1_3

from netgpt.controller.ofp_util import ALL_COOKIE_BITS, delete_flow_strict
from tests.controller.fakes import FakeDatapath

ENTRY = {"dpid": 1, "table_id": 0, "priority": 300,
         "match": {"eth_type": 2048, "ipv4_src": "10.0.0.1", "ipv4_dst": "10.0.0.3"}, "actions": [{"type": "DROP"}]}


def test_a_strict_delete_names_that_one_entry_of_that_cookie_only():
    """Strict: the entry's table, priority and whole match; the cookie with every bit in the mask, so another app's or
    intent's entry with the same match stays; any output port and group (OpenFlow 1.3 filters deletes on them)."""
    msg = delete_flow_strict(FakeDatapath(1, []), dict(ENTRY, table_id=2), cookie=0x4E47_0000_0000_0007)
    assert (msg.command, msg.table_id, msg.priority) == (ofproto_v1_3.OFPFC_DELETE_STRICT, 2, 300)
    assert dict(msg.match.items()) == ENTRY["match"] and msg.instructions == []
    assert (msg.out_port, msg.out_group) == (ofproto_v1_3.OFPP_ANY, ofproto_v1_3.OFPG_ANY)
    msg.serialize()  # what the switch receives
    cookie, mask, table, command = struct.unpack_from("!QQBB", msg.buf, 8)
    assert (cookie, mask, table, command) == (0x4E47_0000_0000_0007, ALL_COOKIE_BITS, 2,
                                              ofproto_v1_3.OFPFC_DELETE_STRICT)
