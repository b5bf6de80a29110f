"""Operator intents on the real forwarding app over stand-in switches: compiled by the real intent compiler, installed
all-or-nothing, verified by reading the switches back, withdrawn, and restored by a new controller instance from the
store. Every lifecycle step is checked in the real intent store (Redis)."""
import json
import time

import pytest
from ryu.controller import ofp_event
from ryu.ofproto import ofproto_v1_3, ofproto_v1_3_parser as parser

from netgpt.controller.operator_intents import AVOID_WEIGHT, OperatorIntents
from netgpt.controller.shortest_path import FORWARD_COOKIE, POLICY_TABLE
from netgpt.core import bus
from netgpt.core.messages import IntentWithdrawal, OperatorIntent
from netgpt.intent import parse_intent
from netgpt.intent.compile import NetworkView, compile_intent
from netgpt.intent.store import IntentStore, cookie_of
from tests.controller.fakes import FakeNetwork

USER, OTHER = "00:00:00:00:00:01", "00:00:00:00:00:02"


@pytest.fixture
def app(forwarding, settings, redis_client):
    """Switches 1 and 2 linked by their ports 2; cell c1 is the user u1 on 1:1, u2 is on 2:1."""
    net = FakeNetwork(forwarding)
    net.switch(1, [1, 2])
    net.switch(2, [1, 2])
    net.link(1, 2, 2, 2)
    net.host(USER, "10.0.0.1", 1, 1)
    net.host(OTHER, "10.0.0.2", 2, 1)
    redis_client.hset(bus.Keys.CELLS, "c1", json.dumps([[1, 1]]))
    redis_client.hset(bus.Keys.HOSTS, mapping={
        "u1": json.dumps({"ip": "10.0.0.1", "mac": USER, "cell": "c1", "dpid": 1, "port": 1}),
        "u2": json.dumps({"ip": "10.0.0.2", "mac": OTHER, "cell": None, "dpid": 2, "port": 1})})
    net.clear()
    return OperatorIntents(settings=settings, redis=redis_client, forwarding=forwarding), net


def compiled(redis_client, text: str, intent_id: str) -> OperatorIntent:
    return compile_intent(parse_intent(text, lm=None), NetworkView.from_redis(redis_client), intent_id, text)


def send(app, msg) -> None:
    app.handle_entry(bus.Streams.OPERATOR_INTENTS, "1-0", bus.entry_fields(msg))


def states(redis_client, intent_id: str) -> list[str]:
    return [e.state.value for e in IntentStore(redis_client).get(intent_id).history]


def test_avoid_link_weighs_it_both_ways_and_expiry_restores_it(app, redis_client):
    app, net = app
    send(app, OperatorIntent(intent_id="i1", action="avoid_link", params={"link": "1-2"}, expires_ts=time.time() + 60))
    assert net.fwd.graph[1][2]["weight"] == net.fwd.graph[2][1]["weight"] == AVOID_WEIGHT
    assert {(dpid, m.command, m.cookie) for dpid, m in net.flow_mods()} == \
        {(1, ofproto_v1_3.OFPFC_DELETE, FORWARD_COOKIE), (2, ofproto_v1_3.OFPFC_DELETE, FORWARD_COOKIE)}  # re-routed
    app.expire(time.time() + 61)
    assert net.fwd.graph[1][2]["weight"] == net.fwd.graph[2][1]["weight"] == 1.0
    assert states(redis_client, "i1") == ["installed", "verified", "withdrawn"]


def test_an_intent_naming_what_does_not_exist_fails_and_changes_nothing(app, redis_client):
    app, net = app
    for intent, reason in (
            (OperatorIntent(intent_id="i2", action="avoid_link", params={"link": "1-9"}), "unknown switch 9"),
            (OperatorIntent(intent_id="i3", action="flows", flows=[{"dpid": 9, "priority": 300, "match": {},
                                                                      "actions": []}]), "switch 9 is not connected"),
            (OperatorIntent(intent_id="i4", action="allocate", selector={"cells": ["c9"]},
                            params={"node_id": "mec1"}), "unknown cell 'c9'")):
        send(app, intent)
        record = IntentStore(redis_client).get(intent.intent_id)
        assert record.state.value == "failed" and record.history[-1].detail == f"rejected: {reason}"
    assert net.log == [] and app.active == {}


def test_rate_limit_compiled_from_words_meters_the_cell_both_ways_is_verified_and_withdrawn(app, redis_client):
    app, net = app
    intent = compiled(redis_client, "cap video in cell 1 at 5 Mbit/s", "i5")
    send(app, intent)
    sent = [m for _, m in net.log if not isinstance(m, parser.OFPMeterMod) or m.command == ofproto_v1_3.OFPMC_ADD]
    meter = next(m for m in sent if isinstance(m, parser.OFPMeterMod))
    flows = [m for m in sent if isinstance(m, parser.OFPFlowMod)]
    assert meter.bands[0].rate == 5000
    assert {m.match.get("in_port") for m in flows} == {1, None} and {m.match.get("eth_dst") for m in flows} >= {USER}
    assert {(m.match["ip_proto"], m.match.get("tcp_dst") or m.match.get("udp_dst")) for m in flows
            if "in_port" in m.match} == {(6, 5004), (17, 5004)}  # the class's server ports, TCP and UDP
    assert all(m.table_id == POLICY_TABLE and m.cookie == cookie_of("i5") for m in flows)
    assert all(m.instructions[0].meter_id == meter.meter_id for m in flows)
    record = IntentStore(redis_client).get("i5")
    assert record.state.value == "verified" and record.measured["1"]["entries"] == len(flows) == 4
    net.clear()
    send(app, IntentWithdrawal(intent_id="i5"))
    delete, meter_delete = (m for _, m in net.log if not isinstance(m, parser.OFPBarrierRequest))
    assert delete.command == ofproto_v1_3.OFPFC_DELETE and delete.cookie == cookie_of("i5")
    assert meter_delete.command == ofproto_v1_3.OFPMC_DELETE and meter_delete.meter_id == meter.meter_id
    assert states(redis_client, "i5")[-1] == "withdrawn" and app.active == {}


def test_a_switch_error_rolls_back_every_switch(app, redis_client):
    """Entries on switches 1 and 2; switch 2 refuses its entry: switch 1's entry is deleted again, record failed."""
    app, net = app

    def refuse(msg):
        if isinstance(msg, parser.OFPFlowMod) and msg.command == ofproto_v1_3.OFPFC_ADD:
            err = parser.OFPErrorMsg(net.datapaths[2], type_=ofproto_v1_3.OFPET_FLOW_MOD_FAILED, code=0)
            err.xid = msg.xid
            app.error_msg_handler(ofp_event.EventOFPErrorMsg(err))

    net.datapaths[2].answer = refuse
    block = [{"dpid": d, "table_id": 0, "priority": 300, "match": {"eth_type": 2054}, "actions": []} for d in (1, 2)]
    send(app, OperatorIntent(intent_id="i6", action="flows", flows=block))
    record = IntentStore(redis_client).get("i6")
    assert record.state.value == "failed" and "switch 2 refused" in record.history[-1].detail
    assert net.datapaths[1].table().get(cookie_of("i6")) is None  # added, then deleted by cookie
    assert app.active == {}


def test_a_new_controller_restores_the_intents_the_store_holds(app, settings, redis_client, forwarding):
    app, net = app
    send(app, compiled(redis_client, "block traffic from u1 to u2", "i7"))
    assert IntentStore(redis_client).get("i7").state.value == "verified"
    for dp in net.datapaths.values():  # the switches lose their tables (a controller restart clears them)
        dp.sent.clear()
    restarted = OperatorIntents(settings=settings, redis=redis_client, forwarding=forwarding)
    restarted._restore()
    held = net.datapaths[1].table()[cookie_of("i7")]
    assert [(m.priority, m.match["ipv4_src"], m.match["ipv4_dst"]) for m in held] == [(300, "10.0.0.1", "10.0.0.2")]
    assert held[0].instructions == []  # a drop
    record = IntentStore(redis_client).get("i7")
    assert record.state.value == "verified" and "re-installed after a controller start" in \
        [e.detail for e in record.history]


def test_an_intent_delivered_twice_is_installed_once(app, redis_client):
    app, net = app
    intent = OperatorIntent(intent_id="i8", action="flows",
                            flows=[{"dpid": 1, "table_id": 0, "priority": 50, "match": {}, "actions": []}])
    send(app, intent)
    send(app, intent)
    assert len(net.datapaths[1].table()[cookie_of("i8")]) == 1


def test_an_avoided_link_that_flaps_is_avoided_again(app, redis_client):
    app, net = app
    send(app, OperatorIntent(intent_id="i9", action="avoid_link", params={"link": "1-2"}))
    net.unlink(1, 2, 2, 2)  # the link went down ...
    net.link(1, 2, 2, 2)  # ... and came back with the default weight
    assert net.fwd.graph[1][2]["weight"] == 1.0
    app._avoid_again("i9")  # what link_add_handler schedules
    assert net.fwd.graph[1][2]["weight"] == net.fwd.graph[2][1]["weight"] == AVOID_WEIGHT


def test_a_withdrawn_intent_delivered_again_is_not_installed(app, redis_client):
    app, net = app
    intent = OperatorIntent(intent_id="i10", action="flows",
                            flows=[{"dpid": 1, "table_id": 0, "priority": 50, "match": {}, "actions": []}])
    send(app, intent)
    send(app, IntentWithdrawal(intent_id="i10"))
    send(app, intent)  # e.g. re-read from the stream after a restart
    assert net.datapaths[1].table().get(cookie_of("i10")) is None and app.active == {}
