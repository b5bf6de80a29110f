"""Per-cell demand forecast from user intents, made before the traffic starts.

A prompt arrives -> the user-intent classifier says what it will lead to (say video streaming, 5 Mbit/s for 30 min) ->
the aggregator adds that session to the cell's sliding window -> a Forecast of the cell's demand for the next N steps
(target 'cell:<cell>:demand_bps'). The edge agent publishes it on `netgpt:forecasts`, next to the UserIntent on
`netgpt:user_intents` (edge_agent/agent_bus.py), at prompt time, i.e. before the answer is even delivered and the
traffic it triggers starts.

How the forecast is computed: every intent is a session of `bandwidth_mbps` from `start = intent.ts + lead_s` for its
expected `duration_s`; the value of step k is the average rate of all sessions over [now + k*step, now + (k+1)*step)
(a session covering half a step adds half its rate). Sessions leave the window once they are expected to have ended.
The intent's confidence is not used to scale its demand (one wrong guess is not a fractional session); intents below
`min_confidence` are left out instead.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from netgpt.core.messages import Forecast, ForecastTarget, UserIntent

FORECAST_MODEL = "user-intent-demand/v1"


def demand_target(cell: str) -> ForecastTarget:
    return ForecastTarget.of_cell(cell, "demand_bps")


@dataclass(frozen=True)
class _Session:
    request_id: str
    start_ts: float
    end_ts: float
    rate_bps: float


@dataclass
class CellDemandAggregator:
    """Sums the expected demand of recent intents per cell over a sliding window and forecasts it in steps."""

    step_s: float = 10.0
    horizon_steps: int = 30  # 30 x 10 s: the next five minutes
    lead_s: float = 0.0  # seconds between the prompt and the start of its traffic
    min_confidence: float = 0.0
    _sessions: dict[str, dict[str, _Session]] = field(default_factory=dict, repr=False)  # cell -> request_id -> session

    def __post_init__(self) -> None:
        if self.step_s <= 0 or self.horizon_steps < 1 or self.lead_s < 0 or not 0 <= self.min_confidence <= 1:
            raise ValueError("need step_s > 0, horizon_steps >= 1, lead_s >= 0 and 0 <= min_confidence <= 1")

    def add(self, intent: UserIntent) -> bool:
        """Count this intent's session in its cell; False if its confidence is below min_confidence.

        Adding the same request_id again replaces the earlier session (a re-classified prompt is not a second one)."""
        if intent.confidence < self.min_confidence:
            return False
        start = intent.ts + self.lead_s
        session = _Session(intent.request_id, start, start + intent.duration_s, intent.bandwidth_mbps * 1e6)
        self._sessions.setdefault(intent.cell, {})[intent.request_id] = session
        return True

    def expire(self, now: float) -> None:
        """Drop sessions expected to have ended by `now`."""
        for cell in list(self._sessions):
            live = {rid: s for rid, s in self._sessions[cell].items() if s.end_ts > now}
            if live:
                self._sessions[cell] = live
            else:
                del self._sessions[cell]

    def cells(self) -> list[str]:
        return sorted(self._sessions)

    def active_sessions(self, cell: str) -> int:
        return len(self._sessions.get(cell, {}))

    def forecast_values(self, cell: str, now: float) -> list[float]:
        """Average expected demand in bit/s per step, for the next horizon_steps steps from `now`."""
        self.expire(now)
        values = []
        for k in range(self.horizon_steps):
            lo, hi = now + k * self.step_s, now + (k + 1) * self.step_s
            total = 0.0
            for s in self._sessions.get(cell, {}).values():
                overlap = min(hi, s.end_ts) - max(lo, s.start_ts)
                if overlap > 0:
                    total += s.rate_bps * overlap / self.step_s
            values.append(total)
        return values

    def forecast(self, cell: str, now: float | None = None, source: str = "") -> Forecast:
        now = time.time() if now is None else now
        return Forecast(target=demand_target(cell), origin_ts=now, step_s=self.step_s,
                        values=self.forecast_values(cell, now), model=FORECAST_MODEL, source=source)

