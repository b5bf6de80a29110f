"""Operator intents on the real forwarding app over stand-in switches: validated before anything is sent, applied,
and reverted on expiry; every outcome in netgpt:intent_status."""
import json
import time

import pytest
from ryu.ofproto import ofproto_v1_3, ofproto_v1_3_parser as parser

from netgpt.controller.operator_intents import AVOID_WEIGHT, OperatorIntents
from netgpt.controller.shortest_path import FORWARD_COOKIE, POLICY_TABLE
from netgpt.core import bus
from netgpt.core.messages import IntentResult, OperatorIntent, parse_message
from tests.controller.fakes import FakeNetwork

USER = "00:00:00:00:00:01"


@pytest.fixture
def app(forwarding, settings, redis_client):
    """Switches 1 and 2 linked by their ports 2; cell c1 is the user on 1:1."""
    net = FakeNetwork(forwarding)
    net.switch(1, [1, 2])
    net.switch(2, [1, 2])
    net.link(1, 2, 2, 2)
    net.host(USER, "10.0.0.1", 1, 1)
    redis_client.hset(bus.Keys.CELLS, "c1", json.dumps([[1, 1]]))
    net.clear()
    return OperatorIntents(settings=settings, redis=redis_client, forwarding=forwarding), net


def _submit(app, redis_client, intent: OperatorIntent) -> IntentResult:
    app.handle_entry(bus.Streams.OPERATOR_INTENTS, "1-0", bus.entry_fields(intent))
    return parse_message(redis_client.hget(bus.Keys.INTENT_STATUS, intent.intent_id))


def test_avoid_link_weighs_it_both_ways_and_expiry_restores_it(app, redis_client):
    app, net = app
    intent = OperatorIntent(intent_id="i1", action="avoid_link", params={"link": "1-2"}, expires_ts=time.time() + 60)
    assert _submit(app, redis_client, intent).reason == "applied"
    assert net.fwd.graph[1][2]["weight"] == net.fwd.graph[2][1]["weight"] == AVOID_WEIGHT
    assert {(dpid, m.command, m.cookie) for dpid, m in net.flow_mods()} == \
        {(1, ofproto_v1_3.OFPFC_DELETE, FORWARD_COOKIE), (2, ofproto_v1_3.OFPFC_DELETE, FORWARD_COOKIE)}  # re-routed
    app.expire(time.time() + 61)
    assert net.fwd.graph[1][2]["weight"] == net.fwd.graph[2][1]["weight"] == 1.0
    assert parse_message(redis_client.hget(bus.Keys.INTENT_STATUS, "i1")).reason == "expired: reverted"


def test_an_intent_naming_what_does_not_exist_is_rejected_and_changes_nothing(app, redis_client):
    app, net = app
    for intent, reason in (
            (OperatorIntent(intent_id="i2", action="avoid_link", params={"link": "1-9"}), "unknown switch 9"),
            (OperatorIntent(intent_id="i3", action="rate_limit", selector={"dpid": 1, "port": 7},
                            params={"rate_mbps": 5}), "switch 1 has no port 7"),
            (OperatorIntent(intent_id="i4", action="rate_limit", selector={"cell": "c9"}, params={"rate_mbps": 5}),
             "unknown cell 'c9'")):
        result = _submit(app, redis_client, intent)
        assert not result.accepted and result.reason == f"rejected: {reason}"
    assert net.log == [] and app.active == {}


def test_rate_limit_meters_a_cell_both_ways_and_expiry_removes_meter_and_flows(app, redis_client):
    app, net = app
    intent = OperatorIntent(intent_id="i5", action="rate_limit", selector={"cell": "c1"}, params={"rate_mbps": 5},
                            expires_ts=time.time() + 60)
    assert _submit(app, redis_client, intent).accepted
    meter, up, down, barrier = (m for _, m in net.log)
    assert isinstance(meter, parser.OFPMeterMod) and meter.bands[0].rate == 5000
    assert up.match["in_port"] == 1 and down.match["eth_dst"] == USER  # uplink and downlink of the access port
    assert all(m.table_id == POLICY_TABLE and m.instructions[0].meter_id == meter.meter_id for m in (up, down))
    assert isinstance(barrier, parser.OFPBarrierRequest)
    net.clear()
    app.expire(time.time() + 61)
    delete, meter_delete, _ = (m for _, m in net.log)
    assert delete.command == ofproto_v1_3.OFPFC_DELETE and delete.cookie == up.cookie
    assert meter_delete.command == ofproto_v1_3.OFPMC_DELETE and meter_delete.meter_id == meter.meter_id
