"""The edge agent's online forecasting loop: telemetry in, Forecast messages out.

- Reads the controller's telemetry stream (bus.Streams.TELEMETRY) through a consumer group, so a restarted agent goes on
  where it stopped (first the entries it had received but not acknowledged) and several agents can share the work; a
  Redis outage is waited out. Every entry is acked once processed; malformed entries are
  logged, counted in `drops` by reason, acked and dropped (a poison entry must not come back forever).
- Keeps, per port, the (ts, tx_bytes) counter samples and turns them into a regular rate series when it forecasts:
  counters_to_rates (a decreasing counter is a reset, not negative traffic), then resample_to_grid at `step_s`; gaps in
  telemetry become NaN steps that the forecaster's cleaning fills (edge_agent.forecast). Target names:
  'port:<dpid>:<port_no>:tx_bps'.
- Refits each target's forecaster every `refit_every_s` (fitting is the slow part), forecasts every step from the
  latest data, and publishes a Forecast (values, interval, model) to bus.Streams.FORECASTS.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

import numpy as np
import redis

from edge_agent.forecast import Forecaster, counters_to_rates, fit_forecaster, resample_to_grid
from netgpt import bus
from netgpt.messages import Forecast, MessageError, PortStats

log = logging.getLogger(__name__)


@dataclass
class _Target:
    samples: deque  # (ts, tx_bytes)
    forecaster: Forecaster | None = None
    fitted_at: float = float("-inf")
    fit_error: str = ""


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
    drops: bus.DropCounter = field(default_factory=bus.DropCounter)
    targets: dict[str, _Target] = field(default_factory=dict)
    published: int = 0
    caught_up: bool = False  # this consumer's entries left unacknowledged by a previous run have been handled

    def __post_init__(self) -> None:
        self._max_samples = int(self.max_steps * self.step_s) + 10_000  # telemetry can come every second
        self.targets = defaultdict(lambda: _Target(samples=deque(maxlen=self._max_samples)), self.targets)

    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) if missing; reading starts at the beginning of the stream."""
        try:
            self.r.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def poll(self, block_ms: int = 1000, count: int = 1000) -> int:
        """Read telemetry for this consumer and ack it; returns how many entries were read. Entries a previous run of
        this consumer received but did not acknowledge (it stopped in between) come first, then new ones."""
        reply = None
        if not self.caught_up:
            reply = self.r.xreadgroup(self.group, self.consumer, {self.stream: "0"}, count=count)
            self.caught_up = not any(entries for _stream, entries in reply or [])
        if self.caught_up:
            reply = self.r.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms)
        n = 0
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                n += 1
                try:
                    msg = bus.decode_entry(fields)
                    if isinstance(msg, PortStats):
                        self.targets[f"port:{msg.dpid}:{msg.port_no}:tx_bps"].samples.append((msg.ts, msg.tx_bytes))
                except MessageError as exc:
                    log.warning("dropped %s entry %s: %s", self.stream, entry_id, exc)
                    self.drops.count(exc)
                self.r.xack(self.stream, self.group, entry_id)  # also the dropped ones: they would come back forever
        return n

    def series(self, target: str) -> tuple[np.ndarray, np.ndarray, float]:
        """(step start times, mean bit/s per step, ts of the last sample) of one target."""
        samples = np.array(self.targets[target].samples, dtype=float)
        if len(samples) < 2:
            raise ValueError(f"{target}: {len(samples)} samples, need at least 2 to get a rate")
        ts, rate = counters_to_rates(samples[:, 0], samples[:, 1])
        grid_ts, values = resample_to_grid(ts, rate, self.step_s)
        return grid_ts[-self.max_steps:], values[-self.max_steps:], float(ts[-1])

    def forecast(self, target: str, now: float) -> Forecast | None:
        """Refit if due, then forecast one target; None (with the reason logged) while there is too little data."""
        state = self.targets[target]
        try:
            _, values, last_ts = self.series(target)
            if state.forecaster is None or now - state.fitted_at >= self.refit_every_s:
                state.forecaster = fit_forecaster(values, self.period, max_horizon=self.horizon)
                state.fitted_at, state.fit_error = now, ""
            point, lower, upper = state.forecaster.predict_interval(values, self.horizon, self.level)
        except ValueError as exc:  # too short, all gaps: the forecaster says why
            if str(exc) != state.fit_error:
                log.info("no forecast for %s yet: %s", target, exc)
            state.fit_error = str(exc)
            return None
        return Forecast(source=self.source, target=target, origin_ts=last_ts, step_s=self.step_s,
                        values=point.tolist(), lower=lower.tolist(), upper=upper.tolist(), interval_level=self.level,
                        model=f"forecast:{state.forecaster.name}")

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
        return out

    def run(self, stop_after_s: float | None = None) -> None:
        """Poll continuously; forecast once per step_s. Ctrl-C (or stop_after_s) ends it."""
        start = next_forecast = time.time()
        need_group = True
        while stop_after_s is None or time.time() - start < stop_after_s:
            try:
                if need_group:  # at start, and after an outage (a restarted Redis may have lost the group)
                    self.ensure_group()
                    need_group = False
                self.poll(block_ms=int(min(self.step_s, 1.0) * 1000))
                if time.time() >= next_forecast:
                    self.step()
                    next_forecast += self.step_s
            except redis.RedisError as exc:  # Redis down or restarting: wait it out, the group keeps our place
                log.warning("telemetry/forecast streams unavailable (%s); retrying in 2 s", exc)
                time.sleep(2.0)
                need_group, self.caught_up = True, False  # what was received before the outage comes first
