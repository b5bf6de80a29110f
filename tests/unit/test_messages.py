import json
import math

import pytest

from netgpt.core.messages import (MESSAGE_TYPES, SCHEMA_VERSION, Allocation, EdgePromptRequest, FlowAction, Forecast,
                             ForecastTarget, MessageError, PortStats, UserIntent, parse_message)


def test_every_kind_is_registered_and_round_trips():
    samples = [
        PortStats(dpid=1, port_no=2, rx_bytes=10, tx_bytes=20, rx_packets=1, tx_packets=2, tx_bps=8.0),
        Forecast(target="link:1-2:tx_bps", origin_ts=1.0, step_s=300, values=[1.0, 2.0], lower=[0.5, 1.0],
                 upper=[2.0, 3.0], interval_level=0.9, model="ridge"),
        UserIntent(request_id="r1", user="u1", cell="c1", service_class="video_streaming", confidence=0.8,
                   bandwidth_mbps=5, duration_s=600, latency_class="best_effort"),
        Allocation(cell="c1", node_id="mec1", vip="10.0.0.200"),
        FlowAction(action_id="a1", op="add", dpid=1, priority=10, match={"in_port": 1},
                   actions=[{"type": "OUTPUT", "port": 2}]),
        EdgePromptRequest(user="u1", cell="c1", text="where can I eat?"),
    ]
    for msg in samples:
        back = parse_message(msg.model_dump_json())
        assert back == msg and type(back) is type(msg)
        assert back.v == SCHEMA_VERSION
    assert {m.kind for m in samples} <= set(MESSAGE_TYPES)


def test_wrong_version_unknown_kind_and_bad_fields_give_one_line_errors():
    good = json.loads(PortStats(dpid=1, port_no=1, rx_bytes=0, tx_bytes=0, rx_packets=0, tx_packets=0)
                      .model_dump_json())
    with pytest.raises(MessageError, match="schema version 2"):
        parse_message({**good, "v": 2})
    with pytest.raises(MessageError, match="unknown message kind 'nope'"):
        parse_message({**good, "kind": "nope"})
    with pytest.raises(MessageError, match="invalid port_stats: rx_bytes"):
        parse_message({**good, "rx_bytes": -5})
    with pytest.raises(MessageError, match="not JSON"):
        parse_message("{oops")
    with pytest.raises(MessageError) as info:
        parse_message({**good, "surprise": 1})
    assert "\n" not in str(info.value)


def test_forecast_rejects_nan_and_mismatched_intervals():
    with pytest.raises(ValueError, match="NaN"):
        Forecast(target="port:1:1:tx_bps", origin_ts=0, step_s=1, values=[1.0, math.nan], model="m")
    with pytest.raises(ValueError, match="lower has 1 steps"):
        Forecast(target="port:1:1:tx_bps", origin_ts=0, step_s=1, values=[1.0, 2.0], lower=[0.0], model="m")


def test_forecast_targets_are_typed_and_their_names_read_back():
    """A target is an object on the wire; its name is read where a target is expected (v1 carried names) and is what
    logs and Redis keys use. A name that does not say what is forecast by dpids, or a metric that does not fit the
    kind, is refused with the grammar in the message."""
    for name in ("port:1:2:tx_bps", "link:3-4:tx_bps", "cell:c1:demand_bps", "cell:c9:requests_rps"):
        target = ForecastTarget.model_validate(name)
        assert str(target) == name
        fc = Forecast(target=name, origin_ts=0, step_s=1, values=[1.0], model="m")
        assert parse_message(fc.model_dump_json()).target == target
        assert json.loads(fc.model_dump_json())["target"]["kind"] == name.split(":")[0]
    assert ForecastTarget.of_link(3, 4).link == (3, 4) and ForecastTarget.of_port(1, 2).port_no == 2
    for bad, why in (("link:s1-s2:tx_bps", "by dpid"), ("cell:c1:tx_bps", "demand_bps or requests_rps"),
                     ("port:1:tx_bps", "is not"), ("nonsense", "is not")):
        with pytest.raises(ValueError, match=why):
            ForecastTarget.model_validate(bad)
    with pytest.raises(ValueError, match="a port target has dpid and port_no"):
        ForecastTarget(kind="port", dpid=1, cell="c1", metric="tx_bps")


def test_edge_prompt_limits():
    with pytest.raises(ValueError):
        EdgePromptRequest(user="u", cell="c1", text="")
    with pytest.raises(ValueError):
        EdgePromptRequest(user="u", cell="c1", text="x" * 2001)
