"""Operator intents on the real forwarding app over stand-in switches: compiled by the real intent compiler, installed
all-or-nothing, verified by reading the switches back, withdrawn, and restored by a new controller instance from the
store. Every lifecycle step is checked in the real intent store (Redis)."""
import json
import time

import pytest
from ryu.controller import ofp_event
from ryu.ofproto import ofproto_v1_3, ofproto_v1_3_parser as parser

from netgpt.controller.intent_installer import AVOID_WEIGHT
from netgpt.controller.operator_intents import OperatorIntents
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


# --- recompilation when the network changes ---------------------------------------------------------------------------

U1, U2, U3 = "00:00:00:00:00:01", "00:00:00:00:00:02", "00:00:00:00:00:03"


@pytest.fixture
def cells3(forwarding, settings, redis_client):
    """Switches 1 - 2 - 3 in a line (1:2-2:2, 2:3-3:2), the access switches of cells c1, c2, c3 with u1, u2, u3 on
    their port 1; port 4 of each is free (where a user that moves attaches)."""
    net = FakeNetwork(forwarding)
    for dpid in (1, 2, 3):
        net.switch(dpid, [1, 2, 3, 4])
    net.link(1, 2, 2, 2)
    net.link(2, 3, 3, 2)
    users = {"u1": (U1, "10.0.0.1", 1), "u2": (U2, "10.0.0.2", 2), "u3": (U3, "10.0.0.3", 3)}
    for name, (mac, ip, dpid) in users.items():
        net.host(mac, ip, dpid, 1)
        redis_client.hset(bus.Keys.CELLS, f"c{dpid}", json.dumps([[dpid, 1]]))
        redis_client.hset(bus.Keys.HOSTS, name, json.dumps({"ip": ip, "mac": mac, "cell": f"c{dpid}", "dpid": dpid,
                                                           "port": 1}))
    net.clear()
    app = OperatorIntents(settings=settings, redis=redis_client, forwarding=forwarding)
    app.recheck()  # what the clock loop does twice a second: the first look
    return app, net


def submitted(app, redis_client, text: str, intent_id: str, forced: bool = False) -> None:
    """As the intent service does: the record with its high-level intent (`forced`: with the conflicts it was forced
    past, as submit(force=True) records them), then the compiled intent to the controller."""
    from netgpt.core.messages import IntentRecord, IntentState
    from netgpt.intent.compile import conflicts

    intent = parse_intent(text, lm=None)
    sent = compile_intent(intent, NetworkView.from_redis(redis_client), intent_id, text)
    store = IntentStore(redis_client)
    found = conflicts(sent.flows, {o.intent_id: [f for c in o.compiled for f in c.flows] for o in store.active()})
    measured = {"conflicts": [{"with": c["with"], "type": c["type"]} for c in found]} if forced and found else {}
    store.put(IntentRecord(intent_id=intent_id, text=text, intent=intent, state=IntentState.compiled,
                           compiled=[sent], measured=measured))
    send(app, sent)


def entries(net, dpid: int, intent_id: str) -> list:
    return net.datapaths[dpid].table().get(cookie_of(intent_id), [])


def test_a_blocked_user_that_moves_is_blocked_at_its_new_switch_and_no_longer_at_the_old(cells3, redis_client):
    app, net = cells3
    submitted(app, redis_client, "block traffic from u1 to u3", "r1")
    assert [(m.match["ipv4_src"], m.match["ipv4_dst"]) for m in entries(net, 1, "r1")] == [("10.0.0.1", "10.0.0.3")]
    net.clear()
    net.host(U1, "10.0.0.1", 2, 4)  # u1 attaches to switch 2 port 4 (cell 2); its first packet tells the controller
    app.recheck()
    assert entries(net, 1, "r1") == []
    moved = entries(net, 2, "r1")
    assert [(m.priority, m.match["ipv4_src"], m.match["ipv4_dst"], m.instructions) for m in moved] == \
        [(300, "10.0.0.1", "10.0.0.3", [])]
    mods = [(dpid, m.command) for dpid, m in net.flow_mods() if m.cookie == cookie_of("r1")]
    assert mods == [(2, ofproto_v1_3.OFPFC_ADD), (1, ofproto_v1_3.OFPFC_DELETE_STRICT)]  # make before break
    record = IntentStore(redis_client).get("r1")
    assert [e.state.value for e in record.history][-2:] == ["installed", "verified"]
    assert record.history[-2].detail.startswith("recompiled (host u1 moved from s1 port 1 (cell c1) to s2 port 4 "
                                                "(cell c2))")
    assert [f["dpid"] for f in record.compiled[0].flows] == [2] and record.measured["2"]["entries"] == 1
    net.clear()
    app.recheck()  # nothing changed since: nothing sent, nothing recorded
    assert net.log == [] and len(IntentStore(redis_client).get("r1").history) == len(record.history)
    send(app, IntentWithdrawal(intent_id="r1"))
    assert entries(net, 2, "r1") == [] and states(redis_client, "r1")[-1] == "withdrawn"


def test_a_capped_user_moves_its_meter_with_it(cells3, redis_client):
    app, net = cells3
    submitted(app, redis_client, "cap video from u2 at 5 Mbit/s", "r2")
    old_meter = entries(net, 2, "r2")[0].instructions[0].meter_id
    net.clear()
    net.host(U2, "10.0.0.2", 3, 4)
    app.recheck()
    meter_mods = [(dpid, m.command) for dpid, m in net.log if isinstance(m, parser.OFPMeterMod)]
    assert (3, ofproto_v1_3.OFPMC_ADD) in meter_mods and meter_mods[-1] == (2, ofproto_v1_3.OFPMC_DELETE)
    assert entries(net, 2, "r2") == [] and len(entries(net, 3, "r2")) == 2  # TCP and UDP video from u2
    new_meter = next(m for d, m in net.log if d == 3 and isinstance(m, parser.OFPMeterMod)).meter_id
    assert all(m.instructions[0].meter_id == new_meter for m in entries(net, 3, "r2"))
    assert app.meters[3] == {new_meter: "r2"} and old_meter not in app.meters.get(2, {})
    assert IntentStore(redis_client).get("r2").state.value == "verified"


def test_a_cell_intent_follows_the_users_that_enter_and_leave_the_cell(cells3, redis_client):
    app, net = cells3
    submitted(app, redis_client, "cap video in cell 2 at 5 Mbit/s", "r3")
    downlink = lambda: {m.match.get("eth_dst") for d in (1, 2, 3) for m in entries(net, d, "r3")} - {None}  # noqa
    assert downlink() == {U2}
    net.host(U1, "10.0.0.1", 2, 4)  # u1 enters cell 2 (another port of its access switch)
    net.host(U2, "10.0.0.2", 3, 4)  # u2 leaves for cell 3
    app.recheck()
    assert downlink() == {U1}
    assert {m.match.get("in_port") for m in entries(net, 2, "r3")} == {1, 4, None}  # u1's new port is cell 2's now
    assert entries(net, 3, "r3") == []
    record = IntentStore(redis_client).get("r3")
    assert "host u1 moved" in record.history[-2].detail and "host u2 moved" in record.history[-2].detail


def test_a_recompilation_a_switch_refuses_keeps_the_previous_entries_and_is_retried(cells3, redis_client):
    app, net = cells3
    submitted(app, redis_client, "block traffic from u1 to u3", "r4")

    def refuse(msg):
        if isinstance(msg, parser.OFPFlowMod) and msg.command == ofproto_v1_3.OFPFC_ADD:
            err = parser.OFPErrorMsg(net.datapaths[2], type_=ofproto_v1_3.OFPET_FLOW_MOD_FAILED, code=0)
            err.xid = msg.xid
            app.error_msg_handler(ofp_event.EventOFPErrorMsg(err))

    net.datapaths[2].answer = refuse
    net.host(U1, "10.0.0.1", 2, 4)
    app.recheck()
    assert len(entries(net, 1, "r4")) == 1 and entries(net, 2, "r4") == []  # as before the attempt
    record = IntentStore(redis_client).get("r4")
    assert record.state.value == "installed" and "not applied: switch 2 refused" in record.history[-1].detail
    app.verify("r4")  # its entries are all there, but not where the network needs them: not verified
    assert IntentStore(redis_client).get("r4").state.value == "installed"
    net.datapaths[2].answer = None
    app.recheck(retry=True)  # the next verification round
    assert entries(net, 1, "r4") == [] and len(entries(net, 2, "r4")) == 1
    assert states(redis_client, "r4")[-2:] == ["installed", "verified"]


def test_a_user_that_leaves_has_no_entries_left_and_is_blocked_again_when_back(cells3, redis_client):
    app, net = cells3
    submitted(app, redis_client, "block traffic from u1 to u3", "r5")
    redis_client.hdel(bus.Keys.HOSTS, "u1")  # the stack's inventory no longer has u1
    app.recheck()
    assert entries(net, 1, "r5") == []
    record = IntentStore(redis_client).get("r5")
    assert record.state.value == "compiled" and record.compiled[0].flows == []
    assert record.history[-1].detail.startswith("waiting: the network has no host 'u1' (host u1 left the network)")
    redis_client.hset(bus.Keys.HOSTS, "u1", json.dumps({"ip": "10.0.0.1", "mac": U1, "cell": "c1", "dpid": 1,
                                                        "port": 1}))
    net.host(U1, "10.0.0.1", 3, 4)  # back, on switch 3
    app.recheck()
    assert [m.match["ipv4_src"] for m in entries(net, 3, "r5")] == ["10.0.0.1"]
    record = IntentStore(redis_client).get("r5")
    assert record.state.value == "verified" and "installed again" in record.history[-2].detail
    redis_client.hdel(bus.Keys.HOSTS, "u1")
    app.recheck()
    send(app, IntentWithdrawal(intent_id="r5"))  # withdrawn while waiting: nothing to remove
    assert states(redis_client, "r5")[-1] == "withdrawn" and app.waiting == {} and app.active == {}


def test_a_restarted_controller_installs_an_intent_where_its_host_is_now(cells3, settings, redis_client, forwarding):
    app, net = cells3
    submitted(app, redis_client, "block traffic from u1 to u3", "r6")
    for dp in net.datapaths.values():
        dp.sent.clear()
    net.host(U1, "10.0.0.1", 2, 4)  # moved while the controller was down
    restarted = OperatorIntents(settings=settings, redis=redis_client, forwarding=forwarding)
    restarted._restore()
    assert entries(net, 1, "r6") == [] and len(entries(net, 2, "r6")) == 1
    record = IntentStore(redis_client).get("r6")
    assert record.state.value == "verified" and record.compiled[0].flows[0]["dpid"] == 2


def test_an_intent_whose_switch_leaves_waits_and_is_installed_when_the_switch_joins_again(cells3, redis_client):
    from ryu.topology import event as topo_event
    from ryu.topology.switches import Switch

    app, net = cells3
    submitted(app, redis_client, "block traffic from u1 to u3", "r7")
    net.fwd.switch_leave_handler(topo_event.EventSwitchLeave(Switch(net.datapaths[1])))
    app.recheck()
    record = IntentStore(redis_client).get("r7")
    assert record.state.value == "compiled" and "host u1 left the network" in record.history[-1].detail
    assert "'u1' is not attached to the network now" in record.history[-1].detail and app.active == {}
    net.switch(1, [1, 2, 3, 4])  # back, with empty tables
    net.link(1, 2, 2, 2)
    app.recheck()
    assert [m.match["ipv4_src"] for m in entries(net, 1, "r7")] == ["10.0.0.1"]
    record = IntentStore(redis_client).get("r7")
    assert record.state.value == "verified" and "host u1 is at s1 port 1" in record.history[-2].detail


FORWARD_U1 = {"table_id": 0, "priority": 300, "match": {"eth_type": 2048, "ipv4_src": "10.0.0.1"},
              "actions": [{"type": "OUTPUT", "port": 3}]}  # everything from u1, at the block's priority


def test_a_recompilation_that_would_conflict_is_not_applied_until_the_other_intent_goes(cells3, redis_client):
    """u1 is blocked toward u3 on switch 1; switch 2 holds a flow-level entry for all u1 sends, at the same priority.
    The block recompiled at switch 2 would correlate with it (which one applies is up to the switch): submit would
    refuse that, so the recompilation is not applied. Nothing is sent, the block stays where it was, the record says
    why; once the other intent is withdrawn the next round moves the block."""
    app, net = cells3
    submitted(app, redis_client, "block traffic from u1 to u3", "r8")
    send(app, OperatorIntent(intent_id="f8", action="flows", flows=[{"dpid": 2, **FORWARD_U1}]))
    before = len(net.log)
    net.host(U1, "10.0.0.1", 2, 4)
    app.recheck()
    assert not [m for _, m in net.log[before:] if getattr(m, "cookie", None) == cookie_of("r8")]  # nothing sent
    assert len(entries(net, 1, "r8")) == 1 and entries(net, 2, "r8") == []
    record = IntentStore(redis_client).get("r8")
    assert record.state.value == "installed" and "not applied: correlation with f8" in record.history[-1].detail
    assert record.measured["conflicts"] == [{"with": "f8", "type": "correlation", "at": "recompilation"}]
    app.verify("r8")
    app.recheck(retry=True)  # the next round: still in conflict, nothing new
    assert entries(net, 2, "r8") == [] and IntentStore(redis_client).get("r8").history == record.history
    assert IntentStore(redis_client).get("r8").measured["conflicts"] == record.measured["conflicts"]
    send(app, IntentWithdrawal(intent_id="f8"))
    app.recheck(retry=True)
    assert entries(net, 1, "r8") == [] and len(entries(net, 2, "r8")) == 1
    record = IntentStore(redis_client).get("r8")
    assert states(redis_client, "r8")[-2:] == ["installed", "verified"] and "conflicts" not in record.measured


def test_a_conflict_the_intent_already_had_does_not_stop_its_recompilation(cells3, redis_client):
    """The same flow-level entry on switches 1 and 2: the block correlated with it on switch 1 from the start
    (submitted past it), so the same conflict on switch 2 is nothing new and the block moves."""
    app, net = cells3
    send(app, OperatorIntent(intent_id="f9", action="flows", flows=[{"dpid": d, **FORWARD_U1} for d in (1, 2)]))
    submitted(app, redis_client, "block traffic from u1 to u3", "r9", forced=True)
    net.host(U1, "10.0.0.1", 2, 4)
    app.recheck()
    assert entries(net, 1, "r9") == [] and len(entries(net, 2, "r9")) == 1
    assert IntentStore(redis_client).get("r9").state.value == "verified"


# --- the conflict check on every path to the switches -----------------------------------------------------------------
# Submit refuses a blocking conflict (netgpt.intent.service); the controller runs the same check wherever entries go to
# a switch: an intent delivered on the stream (sent without the service, or two submits that raced), restored after a
# restart, re-installed on a switch that reconnected, started when its window begins, recompiled. Refused: failed
# with the reason and submit's IntentProblem (measured["problem"]), nothing of it on any switch.


def refused(redis_client, intent_id: str, at: str, other: str) -> None:
    record = IntentStore(redis_client).get(intent_id)
    assert record.state.value == "failed", record.history
    assert f"correlation with {other}: 1 conflicting entry" in record.history[-1].detail
    problem = record.measured["problem"]
    assert problem["kind"] == "conflict" and problem["options"] == [f"{other}:correlation"] and \
        problem["intent_id"] == intent_id
    assert {"with": other, "type": "correlation", "at": at} in record.measured["conflicts"]


def test_an_intent_delivered_in_conflict_with_one_in_force_fails_and_nothing_is_sent(cells3, redis_client):
    """Sent on the stream without the intent service (no submit checked it): a forward of everything u1 sends at the
    block's priority on the block's switch correlates with it (which entry applies is up to the switch)."""
    app, net = cells3
    submitted(app, redis_client, "block traffic from u1 to u3", "r10")
    before = len(net.log)
    send(app, OperatorIntent(intent_id="f10", action="flows", flows=[{"dpid": 1, **FORWARD_U1}]))
    assert not [m for _, m in net.log[before:] if getattr(m, "cookie", None) == cookie_of("f10")]  # nothing sent
    refused(redis_client, "f10", "delivery", "r10")
    assert "f10" not in app.active and len(entries(net, 1, "r10")) == 1  # the block as it was
    assert IntentStore(redis_client).get("f10").history[-1].detail.startswith("rejected: ")


def test_an_intent_in_conflict_with_one_waiting_for_its_window_fails(cells3, redis_client):
    """An intent whose window has not begun is in force (submit checks against it): a later one in conflict with
    it is refused at delivery, though nothing of the first is on a switch yet."""
    app, net = cells3
    window = compiled(redis_client, "block traffic from u1 to u3", "r11")
    send(app, window.model_copy(update={"params": {"starts_ts": time.time() + 600}}))
    assert "r11" in app.lifecycle.pending and entries(net, 1, "r11") == []
    send(app, OperatorIntent(intent_id="f11", action="flows", flows=[{"dpid": 1, **FORWARD_U1}]))
    refused(redis_client, "f11", "delivery", "r11")
    assert entries(net, 1, "f11") == []


def test_an_intent_whose_window_begins_in_conflict_fails_and_nothing_is_sent(cells3, redis_client):
    """u1 is blocked from 10 minutes on; meanwhile it moved to switch 2, which holds a flow-level forward of all it
    sends at the same priority. When the window begins the block is compiled where u1 is now: in conflict there."""
    app, net = cells3
    send(app, OperatorIntent(intent_id="f12", action="flows", flows=[{"dpid": 2, **FORWARD_U1}]))
    text = "block traffic from u1 to u3"
    intent = parse_intent(text, lm=None)
    sent = compile_intent(intent, NetworkView.from_redis(redis_client), "r12", text)
    starts = time.time() + 600
    from netgpt.core.messages import IntentRecord, IntentState
    IntentStore(redis_client).put(IntentRecord(intent_id="r12", text=text, intent=intent, state=IntentState.compiled,
                                               compiled=[sent]))
    send(app, sent.model_copy(update={"params": {"starts_ts": starts}}))  # on switch 1: no conflict, it waits
    assert "r12" in app.lifecycle.pending
    net.host(U1, "10.0.0.1", 2, 4)
    before = len(net.log)
    app.expire(starts + 1)
    assert not [m for _, m in net.log[before:] if getattr(m, "cookie", None) == cookie_of("r12")]
    refused(redis_client, "r12", "window start", "f12")
    assert "r12" not in app.active and "r12" not in app.lifecycle.pending


def conflicting_pair_installed(app, net, redis_client) -> None:
    """What a controller without the check at delivery could leave: the block r13 on switch 1 and the flow-level f13
    in conflict with it, both recorded in force and both on the switch."""
    from netgpt.core.messages import IntentRecord, IntentState

    submitted(app, redis_client, "block traffic from u1 to u3", "r13")
    f13 = OperatorIntent(intent_id="f13", action="flows", flows=[{"dpid": 1, **FORWARD_U1}])
    app.installer.apply(f13)
    IntentStore(redis_client).put(IntentRecord(intent_id="f13", level="flow", flows=f13.flows, compiled=[f13],
                                               state=IntentState.verified))
    assert entries(net, 1, "f13") and entries(net, 1, "r13")


def test_a_restart_restores_the_first_of_two_intents_in_conflict_and_clears_the_other(cells3, settings,
                                                                                        redis_client, forwarding):
    """The switches keep their tables while the controller is down (OVS does): the refused intent's entries from the
    previous run are taken off them, so the switch holds what the store says is in force."""
    app, net = cells3
    conflicting_pair_installed(app, net, redis_client)
    restarted = OperatorIntents(settings=settings, redis=redis_client, forwarding=forwarding)
    restarted._restore()
    assert len(entries(net, 1, "r13")) == 1 and IntentStore(redis_client).get("r13").state.value == "verified"
    refused(redis_client, "f13", "restore", "r13")
    assert IntentStore(redis_client).get("f13").history[-1].detail.startswith("not restored: ")
    assert entries(net, 1, "f13") == [] and set(restarted.active) == {"r13"}


def test_a_restart_restores_both_intents_of_a_conflict_submit_was_forced_past(cells3, settings, redis_client,
                                                                                 forwarding):
    app, net = cells3
    send(app, OperatorIntent(intent_id="f14", action="flows", flows=[{"dpid": 1, **FORWARD_U1}]))
    submitted(app, redis_client, "block traffic from u1 to u3", "r14", forced=True)
    assert set(app.active) == {"f14", "r14"}
    restarted = OperatorIntents(settings=settings, redis=redis_client, forwarding=forwarding)
    restarted._restore()
    assert set(restarted.active) == {"f14", "r14"} and entries(net, 1, "f14") and entries(net, 1, "r14")
    assert {IntentStore(redis_client).get(i).state.value for i in ("f14", "r14")} == {"verified"}
    restarted.switch_connected_handler(ofp_event.EventOFPStateChange(net.switch(1, [1, 2, 3, 4])))
    for intent_id in ("f14", "r14"):  # what the handler spawns: a forced conflict stays accepted on re-install
        restarted.lifecycle.reinstall(intent_id, "switch 1 reconnected")
    assert set(restarted.active) == {"f14", "r14"} and entries(net, 1, "f14") and entries(net, 1, "r14")


def test_a_waiting_intent_whose_host_comes_back_into_a_conflict_keeps_waiting(cells3, redis_client):
    app, net = cells3
    submitted(app, redis_client, "block traffic from u1 to u3", "r15")
    redis_client.hdel(bus.Keys.HOSTS, "u1")
    app.recheck()
    send(app, OperatorIntent(intent_id="f15", action="flows", flows=[{"dpid": 3, **FORWARD_U1}]))
    assert "f15" in app.active  # r15 waits with nothing installed: nothing to conflict with
    redis_client.hset(bus.Keys.HOSTS, "u1", json.dumps({"ip": "10.0.0.1", "mac": U1, "cell": "c1", "dpid": 1,
                                                        "port": 1}))
    net.host(U1, "10.0.0.1", 3, 4)  # back, on f15's switch
    app.recheck()
    record = IntentStore(redis_client).get("r15")
    assert record.state.value == "compiled" and "not installed (correlation with f15" in record.history[-1].detail
    assert entries(net, 3, "r15") == [] and "r15" in app.waiting
    send(app, IntentWithdrawal(intent_id="f15"))
    app.recheck(retry=True)
    assert len(entries(net, 3, "r15")) == 1 and IntentStore(redis_client).get("r15").state.value == "verified"


# --- restarts and reconnects leave no half-applied switch ----------------------------------------------------------


def test_a_restart_after_a_crash_mid_install_leaves_the_entries_only_where_the_host_is(cells3, settings,
                                                                                       redis_client, forwarding):
    """The previous controller sent the block to switch 1 and died before the record said installed (it says
    compiled); u1 moved to switch 2 meanwhile. The restart installs the block at switch 2 and takes the entry the
    previous run left on switch 1 away (the switch kept it)."""
    from netgpt.core.messages import IntentRecord, IntentState

    app, net = cells3
    text = "block traffic from u1 to u3"
    intent = parse_intent(text, lm=None)
    sent = compile_intent(intent, NetworkView.from_redis(redis_client), "r16", text)
    IntentStore(redis_client).put(IntentRecord(intent_id="r16", text=text, intent=intent, state=IntentState.compiled,
                                               compiled=[sent]))
    app.installer.apply(sent)  # on switch 1; then the controller died
    assert len(entries(net, 1, "r16")) == 1
    net.host(U1, "10.0.0.1", 2, 4)
    restarted = OperatorIntents(settings=settings, redis=redis_client, forwarding=forwarding)
    restarted._restore()
    assert entries(net, 1, "r16") == [] and len(entries(net, 2, "r16")) == 1
    mods = [(d, m.command) for d, m in net.flow_mods() if m.cookie == cookie_of("r16")]
    assert mods.index((2, ofproto_v1_3.OFPFC_ADD)) < mods.index((1, ofproto_v1_3.OFPFC_DELETE))  # make before break
    assert states(redis_client, "r16")[-2:] == ["installed", "verified"]


def test_a_reconnected_switch_that_refuses_takes_the_whole_intent_off_and_it_fails(cells3, redis_client):
    app, net = cells3
    drop_arp = {"table_id": 0, "priority": 300, "match": {"eth_type": 2054}, "actions": []}
    send(app, OperatorIntent(intent_id="f17", action="flows", flows=[{"dpid": d, **drop_arp} for d in (1, 2)]))
    assert entries(net, 1, "f17") and entries(net, 2, "f17")
    dp2 = net.switch(2, [1, 2, 3, 4])  # reconnects with empty tables, and refuses what it is sent

    def refuse(msg):
        if isinstance(msg, parser.OFPFlowMod) and msg.command == ofproto_v1_3.OFPFC_ADD:
            err = parser.OFPErrorMsg(dp2, type_=ofproto_v1_3.OFPET_FLOW_MOD_FAILED, code=0)
            err.xid = msg.xid
            app.error_msg_handler(ofp_event.EventOFPErrorMsg(err))

    dp2.answer = refuse
    app.lifecycle.reinstall("f17", "switch 2 reconnected")
    assert entries(net, 1, "f17") == [] and entries(net, 2, "f17") == [] and app.active == {}
    record = IntentStore(redis_client).get("f17")
    assert record.state.value == "failed" and "not re-installed (switch 2 reconnected): switch 2 refused" in \
        record.history[-1].detail


def half_withdrawn(app, net, redis_client) -> None:
    """The previous controller was withdrawing f18 (on switches 1 and 2): switch 1's entry was deleted, then it died
    before the record said withdrawn (it says verified) and before the withdrawal on the stream was acknowledged."""
    drop_arp = {"table_id": 0, "priority": 300, "match": {"eth_type": 2054}, "actions": []}
    send(app, OperatorIntent(intent_id="f18", action="flows", flows=[{"dpid": d, **drop_arp} for d in (1, 2)]))
    _, state = app.active["f18"]
    app.installer.undo({"flows": [f for f in state["flows"] if f[0] == 1]})
    assert entries(net, 1, "f18") == [] and entries(net, 2, "f18")
    assert IntentStore(redis_client).get("f18").state.value == "verified"


def test_a_restart_mid_withdrawal_restores_first_then_withdraws_everything(cells3, settings, redis_client,
                                                                           forwarding, monkeypatch):
    app, net = cells3
    half_withdrawn(app, net, redis_client)
    restarted = OperatorIntents(settings=settings, redis=redis_client, forwarding=forwarding)
    monkeypatch.setattr(restarted, "_consume", lambda: send(restarted, IntentWithdrawal(intent_id="f18")))
    restarted._restore_then_consume()  # what start() spawns; the unacknowledged withdrawal comes again
    assert entries(net, 1, "f18") == [] and entries(net, 2, "f18") == [] and restarted.active == {}
    assert states(redis_client, "f18")[-1] == "withdrawn"


def test_a_withdrawal_of_an_intent_this_run_did_not_install_clears_what_an_earlier_run_left(cells3, settings,
                                                                                            redis_client, forwarding):
    app, net = cells3
    half_withdrawn(app, net, redis_client)
    restarted = OperatorIntents(settings=settings, redis=redis_client, forwarding=forwarding)
    send(restarted, IntentWithdrawal(intent_id="f18"))  # before anything was restored
    assert entries(net, 2, "f18") == [] and states(redis_client, "f18")[-1] == "withdrawn"
    restarted._restore()
    assert entries(net, 1, "f18") == entries(net, 2, "f18") == [] and restarted.active == {}
