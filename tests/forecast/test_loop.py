"""The online loop against a real redis-server: telemetry in through a consumer group, valid Forecast messages out."""
import json

import numpy as np
import redis

from netgpt.edge_agent.forecast.data import synthetic_link_trace, to_counter
from netgpt.edge_agent.forecast.loop import ForecastLoop
from netgpt.core import bus
from netgpt.core.messages import Forecast, ForecastTarget, PortStats, UserIntent, parse_message

T0, STEP_S, PERIOD, HORIZON = 1_800_000_000.0, 1.0, 12, 3


def _write_port(r, dpid, port_no, rate_bps, resets_at=()):
    counter = to_counter(rate_bps, step_s=STEP_S, resets_at=resets_at)
    for i, c in enumerate(counter):
        bus.publish(r, bus.Streams.TELEMETRY, PortStats(source="controller", ts=T0 + i * STEP_S, dpid=dpid,
                                                        port_no=port_no, rx_bytes=0, tx_bytes=int(c), rx_packets=0,
                                                        tx_packets=0))


def test_loop_reads_group_drops_malformed_and_publishes_valid_forecasts(redis_client):
    r = redis_client
    n = 10 * PERIOD
    _write_port(r, 1, 1, synthetic_link_trace(n_days=10, period=PERIOD, seed=1, base_bps=1e6))
    _write_port(r, 2, 3, synthetic_link_trace(n_days=10, period=PERIOD, seed=2, base_bps=1e6), resets_at=(40, 90))
    r.xadd(bus.Streams.TELEMETRY, {"kind": "port_stats", "v": "1", "data": "not json"})
    r.xadd(bus.Streams.TELEMETRY, {"junk": "1"})
    r.xadd(bus.Streams.TELEMETRY, {"kind": "port_stats", "v": "1", "data": json.dumps({"kind": "port_stats", "dpid": -1})})

    loop = ForecastLoop(r, period=PERIOD, step_s=STEP_S, horizon=HORIZON, refit_every_s=3600, consumer="t1")
    loop.ensure_group()
    loop.ensure_group()  # idempotent
    read = 0
    while (got := loop.poll(block_ms=100, count=200)):
        read += got
    assert read == 2 * n + 3
    assert sum(loop.drops.counts.values()) == 3
    assert r.xpending(bus.Streams.TELEMETRY, loop.group)["pending"] == 0  # everything acked, the malformed too

    published = loop.step(now=T0 + n)
    assert sorted(str(m.target) for m in published) == ["port:1:1:tx_bps", "port:2:3:tx_bps"]
    stored = [m for _, m in bus.read_range(r, bus.Streams.FORECASTS)]
    assert len(stored) == 2
    for msg in stored:
        assert isinstance(msg, Forecast)
        again = parse_message(msg.model_dump_json())  # round-trips through the shared model's validation
        assert again == msg
        assert len(msg.values) == HORIZON and msg.interval_level == 0.9
        assert all(lo <= v <= hi for lo, v, hi in zip(msg.lower, msg.values, msg.upper))
        assert msg.origin_ts == T0 + (n - 1) * STEP_S and msg.step_s == STEP_S
        assert np.all(np.asarray(msg.values) >= 0) and msg.model.startswith("forecast:")
    assert max(max(m.values) for m in stored) < 1e8  # counter resets did not turn into huge or negative rates

    # No refit until refit_every_s has passed; a second consumer in the group gets nothing already acked.
    fitted = {t: s.forecaster for t, s in loop.targets.items()}
    loop.step(now=T0 + n + 10)
    assert all(loop.targets[t].forecaster is f for t, f in fitted.items())
    other = ForecastLoop(r, period=PERIOD, step_s=STEP_S, consumer="t2")
    assert other.poll(block_ms=10) == 0


def test_loop_waits_quietly_for_enough_data(redis_client):
    _write_port(redis_client, 5, 1, np.full(8, 1e6))
    loop = ForecastLoop(redis_client, period=PERIOD, step_s=STEP_S, horizon=HORIZON, consumer="t3")
    loop.ensure_group()
    loop.poll(block_ms=100)
    assert loop.step(now=T0 + 10) == []
    assert "at least one period" in loop.targets[ForecastTarget.of_port(5, 1)].fit_error


def test_a_restarted_loop_handles_what_it_had_received_but_not_acknowledged(redis_client):
    r = redis_client
    _write_port(r, 7, 1, np.full(20, 1e6))
    first = ForecastLoop(r, period=PERIOD, step_s=STEP_S, consumer="crashy")
    first.ensure_group()
    # The first run received 20 entries and stopped before acknowledging them.
    r.xreadgroup(first.group, "crashy", {bus.Streams.TELEMETRY: ">"}, count=100)
    assert r.xpending(bus.Streams.TELEMETRY, first.group)["pending"] == 20
    again = ForecastLoop(r, period=PERIOD, step_s=STEP_S, consumer="crashy")
    assert again.poll(block_ms=10) == 20 and len(again.targets[ForecastTarget.of_port(7, 1)].samples) == 20
    assert r.xpending(bus.Streams.TELEMETRY, again.group)["pending"] == 0
    _write_port(r, 7, 2, np.full(3, 1e6))
    assert again.poll(block_ms=10) == 3  # then new entries



class _Flaky:
    """A Redis client whose chosen calls fail as if Redis were down: `fail={"xack": {51}}` makes the 51st xack raise."""

    def __init__(self, r, fail: dict[str, set[int]]):
        self.r, self.fail, self.calls, self.failed = r, fail, {}, []

    def __getattr__(self, name):
        call = getattr(self.r, name)
        if name not in self.fail:
            return call

        def flaky(*args, **kwargs):
            self.calls[name] = self.calls.get(name, 0) + 1
            if self.calls[name] in self.fail[name]:
                self.failed.append(name)
                raise redis.ConnectionError("Connection refused (simulated outage)")
            return call(*args, **kwargs)
        return flaky


def test_run_waits_out_redis_outages_and_handles_what_it_had_received_first(redis_client, caplog):
    """Redis is down when the loop starts (the group cannot be made) and again in the middle of a batch (an ack
    fails): the loop waits, then carries on, first with the entries it had received but not acknowledged."""
    r = redis_client
    n = 10 * PERIOD
    _write_port(r, 4, 2, synthetic_link_trace(n_days=10, period=PERIOD, seed=3, base_bps=1e6))
    flaky = _Flaky(r, fail={"xgroup_create": {1}, "xack": {51}})
    loop = ForecastLoop(flaky, period=PERIOD, step_s=STEP_S, horizon=HORIZON, consumer="t4", retry_s=0.05)
    with caplog.at_level("WARNING"):
        loop.run(stop_after_s=1.5)
    assert flaky.failed == ["xgroup_create", "xack"]
    assert caplog.text.count("unavailable") == 2
    assert r.xpending(bus.Streams.TELEMETRY, loop.group)["pending"] == 0
    # The entry whose ack failed was handled again after the outage (at least once), every other entry once.
    assert len(loop.targets[ForecastTarget.of_port(4, 2)].samples) == n + 1
    assert loop.published >= 1
    assert {str(m.target) for _, m in bus.read_range(r, bus.Streams.FORECASTS)} == {"port:4:2:tx_bps"}


def test_regime_changes_are_published_once_and_queryable(redis_client):
    """A target entering a regime change gives one RegimeChange (start) on the audit stream and in the
    FORECAST_REGIMES hash; staying in it publishes nothing more; leaving it gives one (end)."""
    from netgpt.core.messages import RegimeChange
    from netgpt.edge_agent.forecast.forecaster import Regime

    r = redis_client
    loop = ForecastLoop(r, period=PERIOD, step_s=STEP_S, consumer="t-regime")
    target = ForecastTarget.of_port(1, 1)
    state = loop.targets[target]
    up = Regime(started=2, direction="up", ratio=3.1, steps_outside=1, level_ratio=2.9)
    loop._regime(target, state, up, T0 + 100, "forecast:x")
    loop._regime(target, state, up, T0 + 101, "forecast:x")
    audit = [m for _, m in bus.read_range(r, bus.Streams.AUDIT) if isinstance(m, RegimeChange)]
    assert [(m.state, m.direction, m.target) for m in audit] == [("start", "up", target)]
    assert audit[0].since_ts == T0 + 100 - 2 * STEP_S and audit[0].ratio == 3.1
    stored = parse_message(r.hget(bus.Keys.FORECAST_REGIMES, "port:1:1:tx_bps"))
    assert stored.state == "start"
    loop._regime(target, state, None, T0 + 400, "forecast:x")
    audit = [m for _, m in bus.read_range(r, bus.Streams.AUDIT) if isinstance(m, RegimeChange)]
    assert [m.state for m in audit] == ["start", "end"]
    assert parse_message(r.hget(bus.Keys.FORECAST_REGIMES, "port:1:1:tx_bps")).state == "end"


def test_user_intents_become_cell_request_rate_forecasts(redis_client):
    """Each inferred user intent is one request of its cell: the loop forecasts the cell's requests/s per step (quiet
    steps count 0), published with a typed cell target that allocation reads."""
    r = redis_client
    rng = np.random.default_rng(0)
    n = 6 * PERIOD
    for i in range(n):  # c2: 1-3 requests a step, c3: none after the first step
        for k in range(int(rng.integers(1, 4))):
            bus.publish(r, bus.Streams.USER_INTENTS, UserIntent(
                source="edge:t", ts=T0 + i * STEP_S + 0.1 * k, request_id=f"r{i}-{k}", user="u2", cell="c2",
                service_class="web_chat", confidence=0.9, bandwidth_mbps=1.0, duration_s=5,
                latency_class="best_effort"))
    bus.publish(r, bus.Streams.USER_INTENTS, UserIntent(
        source="edge:t", ts=T0, request_id="q", user="u3", cell="c3", service_class="web_chat", confidence=0.9,
        bandwidth_mbps=1.0, duration_s=5, latency_class="best_effort"))
    loop = ForecastLoop(r, period=PERIOD, step_s=STEP_S, horizon=HORIZON, consumer="t-cells")
    while loop.poll(block_ms=100, count=500):
        pass
    _, c2, last = loop.series(ForecastTarget.of_cell("c2", "requests_rps"), now=T0 + n * STEP_S)
    assert len(c2) == n and 1 <= c2.min() and c2.max() <= 3 and last == T0 + n * STEP_S
    _, c3, _ = loop.series(ForecastTarget.of_cell("c3", "requests_rps"), now=T0 + n * STEP_S)
    assert c3[0] == 1 and not c3[1:].any()
    published = {str(m.target): m for m in loop.step(now=T0 + n * STEP_S)}
    assert set(published) == {"cell:c2:requests_rps", "cell:c3:requests_rps"}
    assert 1 <= np.mean(published["cell:c2:requests_rps"].values) <= 3
    assert max(published["cell:c3:requests_rps"].values) < 0.5


def test_warm_start_history_lets_the_loop_forecast_before_a_season_of_telemetry(redis_client):
    """Ten seasons of history in Keys.FORECAST_HISTORY (as a trace replay writes it) and three live samples: the loop
    forecasts at once, at the history's level; without the history it waits. A history of another step is ignored.
    Every step writes the loop's status, which expires."""
    r = redis_client
    history = synthetic_link_trace(n_days=10, period=PERIOD, seed=4, base_bps=2e6)
    live_t0 = T0 + 1000.0
    r.hset(bus.Keys.FORECAST_HISTORY, "port:3:1:tx_bps", json.dumps(
        {"step_s": STEP_S, "end_ts": live_t0 - 2 * STEP_S, "values": history.tolist()}))
    r.hset(bus.Keys.FORECAST_HISTORY, "port:3:2:tx_bps", json.dumps(
        {"step_s": 300.0, "end_ts": live_t0, "values": history.tolist()}))
    for port in (1, 2, 3):
        for i, counter in enumerate((0, 250_000, 500_000)):  # 2 Mbit/s for two steps
            bus.publish(r, bus.Streams.TELEMETRY, PortStats(ts=live_t0 + i * STEP_S, dpid=3, port_no=port,
                                                            rx_bytes=0, tx_bytes=counter, rx_packets=0, tx_packets=0))
    loop = ForecastLoop(r, period=PERIOD, step_s=STEP_S, horizon=HORIZON, consumer="t-warm")
    while loop.poll(block_ms=100):
        pass
    _, values, _ = loop.series(ForecastTarget.of_port(3, 1))
    # history ends at live_t0 - 2; the first live rate is the step from live_t0 + 1: three steps of gap between
    assert len(values) == len(history) + 3 + 2 and np.isnan(values[len(history):-2]).all()
    assert np.array_equal(values[:len(history)], history) and np.allclose(values[-2:], 2e6)
    published = {str(m.target): m for m in loop.step(now=live_t0 + 3 * STEP_S)}
    assert set(published) == {"port:3:1:tx_bps"}  # 3:2's history has another step; 3:3 has none
    # A history that ends after the first live step wins over it (a replay that began once the network was up).
    r.hset(bus.Keys.FORECAST_HISTORY, "port:3:3:tx_bps", json.dumps(
        {"step_s": STEP_S, "end_ts": live_t0 + 2 * STEP_S, "values": history.tolist()}))
    _, values, _ = loop.series(ForecastTarget.of_port(3, 3))
    assert len(values) == len(history) + 1 and np.array_equal(values[:-1], history)
    assert 0.5e6 < np.mean(published["port:3:1:tx_bps"].values) < 8e6
    status = json.loads(r.get(bus.Keys.FORECAST_LOOP))
    assert status["targets"] == 3 and status["published"] == 1 and r.ttl(bus.Keys.FORECAST_LOOP) > 0
