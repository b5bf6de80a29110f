"""Per-cell demand aggregation, and the edge agent's publisher writing UserIntent + Forecast to a real redis-server."""
import pytest

from netgpt.core import bus
from netgpt.edge_agent.agent_bus import AgentBus, RedisLink
from netgpt.edge_agent.user_intent.demand import CellDemandAggregator, demand_target
from netgpt.core.messages import Forecast, LatencyClass, ServiceClass, UserIntent, parse_message

T0 = 1_800_000_000.0


def _intent(request_id, cell="c1", mbps=5.0, duration=30.0, ts=T0, confidence=0.9):
    return UserIntent(ts=ts, request_id=request_id, user="u", cell=cell, service_class=ServiceClass.video_streaming,
                      confidence=confidence, bandwidth_mbps=mbps, duration_s=duration,
                      latency_class=LatencyClass.best_effort, model="test")


def test_sessions_add_up_per_step_with_partial_overlap():
    agg = CellDemandAggregator(step_s=10, horizon_steps=5)
    agg.add(_intent("a", mbps=5, duration=30))  # 5 Mbit/s for steps 0-2
    agg.add(_intent("b", mbps=1, duration=15))  # 1 Mbit/s for step 0 and half of step 1
    agg.add(_intent("x", cell="c2", mbps=50, duration=600))  # another cell: not counted in c1
    assert agg.forecast_values("c1", now=T0) == pytest.approx([6e6, 5.5e6, 5e6, 0, 0])
    assert agg.cells() == ["c1", "c2"]


def test_lead_time_shifts_the_demand_and_ended_sessions_expire():
    agg = CellDemandAggregator(step_s=10, horizon_steps=3, lead_s=10)
    agg.add(_intent("a", mbps=2, duration=10))
    assert agg.forecast_values("c1", now=T0) == pytest.approx([0, 2e6, 0])
    assert agg.forecast_values("c1", now=T0 + 25) == [0, 0, 0]
    assert agg.active_sessions("c1") == 0 and agg.cells() == []


def test_same_request_replaces_and_low_confidence_is_left_out():
    agg = CellDemandAggregator(step_s=10, horizon_steps=1, min_confidence=0.5)
    agg.add(_intent("a", mbps=5))
    agg.add(_intent("a", mbps=1))
    assert not agg.add(_intent("b", mbps=50, confidence=0.2))
    assert agg.forecast_values("c1", now=T0) == pytest.approx([1e6])


def test_forecast_message_validates():
    agg = CellDemandAggregator(step_s=10, horizon_steps=4)
    agg.add(_intent("a"))
    forecast = agg.forecast("c1", now=T0, source="edge:m1")
    assert forecast.target == demand_target("c1") and str(forecast.target) == "cell:c1:demand_bps"
    assert parse_message(forecast.model_dump_json()) == forecast


def test_bad_aggregator_settings_raise():
    with pytest.raises(ValueError):
        CellDemandAggregator(step_s=0)


def test_published_intent_and_forecast_read_back_from_real_redis(redis_client, trained_classifier):
    """The agent's publisher (AgentBus.publish_once, what its publisher thread runs per request) on a real
    redis-server (the shared fixture starts one on a free port and stops it by PID; skips if not installed)."""
    publisher = AgentBus(RedisLink(lambda: redis_client, "test"), heartbeat=lambda: None, interval_s=1.0,
                         aggregator=CellDemandAggregator(step_s=10, horizon_steps=6))
    intent = trained_classifier.infer_intent("start a video call with my aunt", "alice", "c7", "req-42",
                                             source="edge:test")
    assert publisher.publish_once(intent)
    assert publisher.publish_once(_intent("req-43", cell="c7", ts=intent.ts))

    intents = [m for _, m in bus.read_range(redis_client, bus.Streams.USER_INTENTS)]
    forecasts = [m for _, m in bus.read_range(redis_client, bus.Streams.FORECASTS)]
    assert intents[0] == intent and intents[0].service_class == ServiceClass.voice_video_call
    assert len(intents) == 2 and all(isinstance(m, UserIntent) for m in intents)
    assert len(forecasts) == 2 and all(isinstance(m, Forecast) for m in forecasts)
    assert str(forecasts[0].target) == "cell:c7:demand_bps" and forecasts[0].source == "edge:test"
    assert forecasts[0].values[0] == pytest.approx(intent.bandwidth_mbps * 1e6)
    assert forecasts[1].values[0] == pytest.approx((intent.bandwidth_mbps + 5.0) * 1e6)
    assert publisher.sent["intents"] == 2
    raw = redis_client.xrange(bus.Streams.FORECASTS)[0][1]
    assert raw["kind"] == "forecast" and parse_message(raw["data"]) == forecasts[0]
