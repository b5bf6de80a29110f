"""The edge agent's online forecasting loop: telemetry in, Forecast messages out.

- Reads the controller's telemetry stream (bus.Streams.TELEMETRY) through a consumer group with the bus's shared
  reader (netgpt.core.bus.GroupReader; `run` is its forever() loop), so a restarted agent goes on where it stopped
  (first the entries it had received but not acknowledged) and several agents can share the work; a Redis outage is
  waited out. Every entry is acked once processed; malformed entries are logged, counted in `drops` by reason, acked
  and dropped (a poison entry must not come back forever).
- Keeps, per port, the (ts, tx_bytes) counter samples and turns them into a regular rate series when it forecasts:
  counters_to_rates (a decreasing counter is a reset, not negative traffic), then resample_to_grid at `step_s`; gaps in
  telemetry become NaN steps that the forecaster's cleaning fills (netgpt.edge_agent.forecast.forecaster). Targets:
  ForecastTarget.of_port(dpid, port_no), i.e. 'port:<dpid>:<port_no>:tx_bps'.
- Reads the inferred user intents (bus.Streams.USER_INTENTS, same group) too: each is one request of its cell, and
  the cell's request rate per step is forecast like a port's rate (target 'cell:<cell>:requests_rps'), which compute
  allocation provisions MEC nodes for (netgpt.controller.allocation). A step without requests counts 0.
- Refits each target's forecaster every `refit_every_s` (fitting is the slow part), forecasts every step from the
  latest data, and publishes a Forecast (values, interval, calibrated quantiles, model) to bus.Streams.FORECASTS.
- Warm start: history from before the first telemetry, as per-step values, is read once per target from the hash
  bus.Keys.FORECAST_HISTORY (target name -> {"step_s", "end_ts", "values"}; e.g. what a trace replay wrote, or an
  operator's own telemetry store) and put before the live series, the steps between its end and the first sample
  left as gaps; live steps from before its end are dropped (the history is what happened until then). So a loop
  that starts with an emulation forecasts from its first step instead of after a season.
  History of another step length is ignored (logged).
- Every step it writes its status (targets, forecasts published, drops) to bus.Keys.FORECAST_LOOP, which expires
  when the loop stops: `netgpt status` and the stack's health check read it.
- When a target's forecaster enters or leaves a regime change (its actual values left the interval several steps
  running, netgpt.edge_agent.forecast.forecaster), publishes a RegimeChange (state start / end) on bus.Streams.AUDIT and
  keeps the latest per target in the hash bus.Keys.FORECAST_REGIMES, which an operator (or the intent layer) queries.
"""
from __future__ import annotations

import json
import logging
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

import numpy as np
import redis

from netgpt.edge_agent.forecast.forecaster import (QUANTILES, Forecaster, Regime, counters_to_rates, fit_forecaster,
                                                   resample_to_grid)
from netgpt.core import bus
from netgpt.core.messages import (Forecast, ForecastQuantile, ForecastTarget, MessageError, PortStats, RegimeChange,
                                  UserIntent)

log = logging.getLogger(__name__)


@dataclass
class _Target:
    samples: deque  # (ts, tx_bytes) of a port; (ts,) of each request of a cell
    forecaster: Forecaster | None = None
    fitted_at: float = float("-inf")
    fit_error: str = ""
    regime: Regime | None = None  # the regime change in force at the last forecast
    prior: tuple[float, np.ndarray] | None = None  # warm-start history: (end ts, values per step)


@dataclass
class ForecastLoop:
    r: redis.Redis
    period: int  # steps per season (a day): 288 at step_s=300
    step_s: float  # forecast step; telemetry (every 1-2 s) is averaged into steps of this length
    horizon: int = 12
    level: float = 0.9
    refit_every_s: float = 6 * 3600.0
    group: str = "edge-forecast"
    consumer: str = "edge-1"
    source: str = "edge:forecast"
    max_steps: int = 5 * 7 * 288  # history kept per target, in steps (five weeks at 5 minutes)
    stream: str = bus.Streams.TELEMETRY
    intents_stream: str = bus.Streams.USER_INTENTS
    drops: bus.DropCounter = field(default_factory=bus.DropCounter)
    targets: dict[ForecastTarget, _Target] = field(default_factory=dict)
    published: int = 0
    retry_s: float = 2.0  # while Redis is down, `run` tries again this often
    methods: tuple[str, ...] | None = None  # forecasting methods; None: fit_forecaster's default (Settings.forecast_lm)

    def __post_init__(self) -> None:
        self._max_samples = int(self.max_steps * self.step_s) + 10_000  # telemetry can come every second
        self.targets = defaultdict(lambda: _Target(samples=deque(maxlen=self._max_samples)), self.targets)
        if self.drops.r is None:  # counted where operators look too (bus.Keys.DROPS)
            self.drops.r, self.drops.component = self.r, self.source
        self.reader = bus.GroupReader(self.r, self.group, self.consumer, [self.stream, self.intents_stream])

    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) if missing; reading starts at the beginning of the stream."""
        self.reader.ensure_groups()

    def poll(self, block_ms: int = 1000, count: int = 1000) -> int:
        """Read one batch of telemetry for this consumer and ack it; returns how many entries were read. Entries a
        previous run of this consumer received but did not acknowledge (it stopped in between) come first, then new
        ones. A Redis error is raised (`run` waits it out)."""
        return self.reader.read(self.handle_entry, count=count, block_ms=block_ms)

    def handle_entry(self, stream: str, entry_id: str, fields: dict) -> None:
        """One entry: a PortStats sample is kept for its port, a UserIntent counts as a request of its cell; a
        malformed entry is logged and counted."""
        try:
            msg = bus.decode_entry(fields)
        except MessageError as exc:
            log.warning("dropped %s entry %s: %s", stream, entry_id, exc)
            self.drops.count(exc)
            return
        if isinstance(msg, PortStats):
            self.targets[ForecastTarget.of_port(msg.dpid, msg.port_no)].samples.append((msg.ts, msg.tx_bytes))
        elif isinstance(msg, UserIntent):
            self.targets[ForecastTarget.of_cell(msg.cell, "requests_rps")].samples.append((msg.ts,))

    def _prior(self, target: ForecastTarget) -> tuple[float, np.ndarray] | None:
        """The target's warm-start history from Keys.FORECAST_HISTORY. Read while the target has neither history nor a
        forecaster: the history may come after its first telemetry (a replay that starts once its network is up)."""
        state = self.targets[target]
        if state.prior is None and state.forecaster is None:
            raw = self.r.hget(bus.Keys.FORECAST_HISTORY, str(target))
            if raw:
                try:
                    h = json.loads(raw)
                    step, end, values = float(h["step_s"]), float(h["end_ts"]), np.asarray(h["values"], dtype=float)
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("ignored the warm-start history of %s: %s", target, exc)
                    self.drops.add("bad warm-start history")
                    return None
                if abs(step - self.step_s) > 1e-9:
                    log.warning("ignored the warm-start history of %s: step %g s, the loop's is %g s", target, step,
                                self.step_s)
                else:
                    state.prior = (end, values)
                    log.info("%s: warm start from %d steps of history", target, len(values))
        return state.prior

    def series(self, target: ForecastTarget, now: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        """(step start times, mean value per step, ts of the last observation) of one target, after its warm-start
        history if it has one."""
        grid_ts, values, last_ts = self._live_series(target, now)
        prior = self._prior(target)
        if prior is None:
            return grid_ts, values, last_ts
        end, before = prior
        live = grid_ts >= end - 1e-9  # the history is what happened until its end: live steps before it go
        grid_ts, values = grid_ts[live], values[live]
        if len(grid_ts):
            gap = np.full(int(round((grid_ts[0] - end) / self.step_s)), np.nan)
            start = grid_ts[0] - self.step_s * (len(gap) + len(before))
            values = np.concatenate([before, gap, values])[-self.max_steps:]
            grid_ts = (start + self.step_s * np.arange(len(before) + len(gap) + len(grid_ts)))[-self.max_steps:]
        return grid_ts, values, last_ts

    def _live_series(self, target: ForecastTarget, now: float | None) -> tuple[np.ndarray, np.ndarray, float]:
        """From what the loop received: bit/s of a port, from its counters; requests/s of a cell, counted per step up
        to `now` (a quiet cell is observed at 0)."""
        samples = np.array(self.targets[target].samples, dtype=float)
        if target.kind == "cell":
            if not len(samples):
                raise ValueError(f"{target}: no requests yet")
            start, end = float(samples[0, 0]), max(float(samples[-1, 0]), now or 0.0)
            steps = int((end - start) // self.step_s)  # complete steps since the first request
            if steps < 1:
                raise ValueError(f"{target}: less than one step since its first request")
            edges = start + self.step_s * np.arange(steps + 1)
            counts, _ = np.histogram(samples[:, 0], bins=edges)
            return edges[:-1][-self.max_steps:], (counts / self.step_s)[-self.max_steps:], float(edges[-1])
        if len(samples) < 2:
            raise ValueError(f"{target}: {len(samples)} samples, need at least 2 to get a rate")
        ts, rate = counters_to_rates(samples[:, 0], samples[:, 1])
        grid_ts, values = resample_to_grid(ts, rate, self.step_s)
        return grid_ts[-self.max_steps:], values[-self.max_steps:], float(ts[-1])

    def forecast(self, target: ForecastTarget, now: float) -> Forecast | None:
        """Refit if due, then forecast one target; None (with the reason logged) while there is too little data."""
        state = self.targets[target]
        try:
            _, values, last_ts = self.series(target, now)
            if state.forecaster is None or now - state.fitted_at >= self.refit_every_s:
                state.forecaster = fit_forecaster(values, self.period, max_horizon=self.horizon, methods=self.methods)
                state.fitted_at, state.fit_error = now, ""
            levels = sorted(set(QUANTILES) | {round((1 - self.level) / 2, 6), round((1 + self.level) / 2, 6)})
            p = state.forecaster.forecast(values, self.horizon, levels=levels)
        except ValueError as exc:  # too short, all gaps: the forecaster says why
            if str(exc) != state.fit_error:
                log.info("no forecast for %s yet: %s", target, exc)
            state.fit_error = str(exc)
            return None
        self._regime(target, state, p.regime, last_ts, f"forecast:{p.model}")
        lower, upper = p.interval(self.level)
        return Forecast(source=self.source, target=target, origin_ts=last_ts, step_s=self.step_s,
                        values=p.values.tolist(), lower=lower.tolist(), upper=upper.tolist(), interval_level=self.level,
                        quantiles=[ForecastQuantile(q=q, values=v.tolist()) for q, v in p.quantiles.items()],
                        model=f"forecast:{p.model}")

    def _regime(self, target: ForecastTarget, state: _Target, regime: Regime | None, last_ts: float, model: str) -> None:
        """Publish a RegimeChange when the target enters or leaves one (not at every step while it lasts)."""
        before, state.regime = state.regime, regime
        if (before is None) == (regime is None):
            return
        r = regime or before
        msg = RegimeChange(source=self.source, target=target, state="start" if regime else "end",
                           direction=r.direction, since_ts=last_ts - r.started * self.step_s,
                           ratio=max(0.0, r.ratio), steps_outside=r.steps_outside, model=model)
        bus.publish(self.r, bus.Streams.AUDIT, msg)
        self.r.hset(bus.Keys.FORECAST_REGIMES, str(target), msg.model_dump_json())
        log.info("forecast regime %s for %s: %s, actual/forecast %.2f", msg.state, target, msg.direction, msg.ratio)

    def step(self, now: float | None = None) -> list[Forecast]:
        """Forecast every target and publish the results; returns what was published."""
        now = time.time() if now is None else now
        out = []
        for target in list(self.targets):
            msg = self.forecast(target, now)
            if msg is not None:
                bus.publish(self.r, bus.Streams.FORECASTS, msg)
                out.append(msg)
        self.published += len(out)
        self.write_status(now)
        return out

    def write_status(self, now: float) -> None:
        """What the loop is doing, for `netgpt status` and the stack's health check; expires if the loop stops."""
        status = {"ts": now, "step_s": self.step_s, "period": self.period, "horizon": self.horizon,
                  "targets": len(self.targets), "published": self.published, "drops": self.drops.counts}
        self.r.set(bus.Keys.FORECAST_LOOP, json.dumps(status), ex=max(30, int(3 * self.step_s)))

    def run(self, stop_after_s: float | None = None) -> None:
        """Read telemetry continuously (the GroupReader's forever(), which also waits out Redis outages) and forecast
        once per step_s. Ctrl-C (or stop_after_s) ends it."""
        start = next_forecast = time.time()
        try:
            self.write_status(start)
        except redis.RedisError:
            pass  # the reader waits the outage out

        def tick() -> None:
            nonlocal next_forecast
            if time.time() >= next_forecast:
                self.step()
                # Steps missed while fitting are skipped, not run back to back on the same data.
                next_forecast = max(next_forecast + self.step_s, time.time())

        self.reader.forever(self.handle_entry, retry_s=self.retry_s, block_ms=int(min(self.step_s, 1.0) * 1000),
                            count=1000, tick=tick,
                            stop=lambda: stop_after_s is not None and time.time() - start >= stop_after_s)
