"""Traffic forecasting for the edge agent: one stable contract, several methods behind it.

    f = fit_forecaster(series, period)          # series: 1-D array, regular steps; period: steps per day (288 at 5 min)
    f.predict(history, horizon)                 # history: every observation up to the forecast origin
    f.predict_interval(history, horizon, 0.9)   # (point, lower, upper)

What fit does. It cleans the series (below), then runs a rolling-origin backtest on the series' own tail: every
candidate method (METHODS, from netgpt.edge_agent.forecast.methods: seasonal naive, ridge on lags, profile ridge, boosted
trees) is fitted on
everything before the tail and forecasts from each origin in the tail. For each step h it keeps the single method, or the
mean of two, with the lowest MAE there; the residuals of that choice, divided by the series' level at each origin, give
the prediction intervals (split-conformal style: the empirical quantiles per step, scaled by today's level). Then the
chosen methods are refitted on the whole series.

The LM forecaster (`edge_lm`: edge LM + `forecast` LoRA adapter, netgpt.edge_agent.forecast.lm) is one more method in
the same backtest, but opt-in because it is slow (1-3 generations per forecast): it is a candidate only when `methods`
names it or Settings.forecast_lm (NETGPT_FORECAST_LM=1) adds it to the defaults. When it is a candidate the selection
backtest runs on at most 40 evenly spaced origins of the tail (`max_backtest_origins`), the same for every method. A
method whose `unavailable()` gives a reason (for edge_lm: base or adapter missing, or made for another base) is left out
with that reason logged; without it, fit behaves exactly as before.

Bad input, and what happens:
- NaN / inf / missing samples: gaps up to `max_gap` steps (default period // 12, i.e. 2 hours at 5 min) are linearly
  interpolated; longer gaps take the value one period earlier (else they are interpolated too). `clean_series` returns
  the filled series and a mask of what was filled. A series with no finite value raises ValueError.
- Cumulative byte counters: convert with `counters_to_rates(ts, bytes)` first. A decrease is a counter reset: the new
  value is what was counted since the reset (as Prometheus' rate() does); a non-increasing timestamp gives NaN (a gap).
- Irregular timestamps: `resample_to_grid(ts, values, step_s)` averages per step and leaves empty steps NaN.
- Too short: fit needs at least one period (ValueError says how many observations it needs). From one period up to what
  the learned methods need, only seasonal naive is fitted. predict with a history shorter than the chosen methods need
  falls back to seasonal naive if the history holds one period, and raises ValueError otherwise.
- Horizons beyond max_horizon (the longest step fitted, default 36): those steps continue seasonally naive from the
  forecast. A forecast is never NaN: non-finite steps are replaced by the seasonal naive value, and if that is not finite
  either, predict raises ValueError instead of returning it.
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field

import numpy as np

from netgpt.core.settings import Settings, get_settings
from netgpt.edge_agent.forecast.lm import EdgeLMForecast
from netgpt.edge_agent.forecast.methods import Boosted, Method, ProfileRidge, RidgeLags, SeasonalNaive

log = logging.getLogger(__name__)

# Every method fit_forecaster and backtest can use, by name. Nothing registers itself: a new method is listed here.
METHODS: dict[str, type[Method]] = {
    m.name: m for m in (SeasonalNaive, RidgeLags, ProfileRidge, Boosted, EdgeLMForecast)}
DEFAULT_METHODS = ("seasonal_naive", "ridge_lags", "profile_ridge", "boosted")
LM_METHOD = EdgeLMForecast.name


def default_methods(settings: Settings | None = None) -> tuple[str, ...]:
    """DEFAULT_METHODS, plus edge_lm when Settings.forecast_lm is set (NETGPT_FORECAST_LM=1)."""
    lm = (settings or get_settings()).forecast_lm
    return DEFAULT_METHODS + ((LM_METHOD,) if lm else ())


def available_methods(methods) -> list[str]:
    """Methods that can run here; the others (their `unavailable()` gives a reason) are logged and left out."""
    out = []
    for m in methods:
        reason = METHODS[m].unavailable()
        if reason:
            log.warning("forecast: leaving out %s: %s", m, reason)
        else:
            out.append(m)
    return out


# --- cleaning ----------------------------------------------------------------------------------------------------------


def clean_series(series: np.ndarray, period: int, max_gap: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(filled series, mask of filled steps). Short gaps: linear; long gaps: one period earlier. See module doc."""
    y = np.asarray(series, dtype=float).ravel().copy()
    missing = ~np.isfinite(y)
    if missing.all():
        raise ValueError("the series has no finite value")
    if not missing.any():
        return y, missing
    max_gap = max(1, period // 12) if max_gap is None else max_gap
    idx = np.arange(len(y))
    interpolated = np.interp(idx, idx[~missing], y[~missing])  # also holds the first/last value over the edges
    # Length of the missing run each step belongs to, to tell short gaps from long ones.
    starts = np.flatnonzero(missing & ~np.concatenate([[False], missing[:-1]]))
    ends = np.flatnonzero(missing & ~np.concatenate([missing[1:], [False]]))
    run_len = np.zeros(len(y), dtype=int)
    for s, e in zip(starts, ends):
        run_len[s:e + 1] = e - s + 1
    y[missing] = interpolated[missing]
    for i in np.flatnonzero(run_len > max_gap):  # in order, so a gap longer than a period copies already-filled values
        if i >= period:
            y[i] = y[i - period]
    return y, missing


def counters_to_rates(ts: np.ndarray, counter_bytes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative byte counters -> (ts of each interval's end, bit/s). Decreases are counter resets (see module doc)."""
    ts, counter = np.asarray(ts, dtype=float), np.asarray(counter_bytes, dtype=float)
    if ts.shape != counter.shape or ts.ndim != 1:
        raise ValueError(f"ts and counter_bytes must be 1-D and the same length, got {ts.shape} and {counter.shape}")
    dt, delta = np.diff(ts), np.diff(counter)
    delta = np.where(delta < 0, counter[1:], delta)  # reset: the counter restarted from 0
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(dt > 0, 8.0 * delta / dt, np.nan)
    return ts[1:], rate


def resample_to_grid(ts: np.ndarray, values: np.ndarray, step_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Irregular samples -> regular steps of step_s (default: median spacing), mean per step, NaN where none."""
    ts, values = np.asarray(ts, dtype=float), np.asarray(values, dtype=float)
    ok = np.isfinite(ts)
    ts, values = ts[ok], values[ok]
    if len(ts) == 0:
        raise ValueError("no finite timestamps")
    order = np.argsort(ts, kind="stable")
    ts, values = ts[order], values[order]
    if step_s is None:
        spacing = np.diff(ts)
        step_s = float(np.median(spacing[spacing > 0])) if (spacing > 0).any() else 1.0
    slot = np.floor((ts - ts[0]) / step_s + 1e-9).astype(int)
    n = slot[-1] + 1
    good = np.isfinite(values)
    total = np.bincount(slot[good], weights=values[good], minlength=n)
    count = np.bincount(slot[good], minlength=n)
    with np.errstate(invalid="ignore"):
        grid = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return ts[0] + step_s * np.arange(n), grid


def _level(y: np.ndarray, origins: np.ndarray, period: int) -> np.ndarray:
    """Mean |y| over the period up to each origin: the scale intervals are expressed in."""
    c = np.concatenate([[0.0], np.cumsum(np.abs(y))])
    start = np.maximum(origins + 1 - period, 0)
    return (c[origins + 1] - c[start]) / (origins + 1 - start) + 1e-12


# --- the forecaster ----------------------------------------------------------------------------------------------------


@dataclass
class Forecaster:
    """Fitted methods plus, per step, which of them to average and the scaled residuals for intervals."""

    period: int
    max_horizon: int
    methods: dict[str, Method]
    weights: np.ndarray  # (max_horizon, len(methods)): per step, the weight of each method (rows sum to 1)
    residuals: np.ndarray  # (n_origins, max_horizon): backtest errors of the combination, divided by the level
    backtest_mae: dict[str, np.ndarray] = field(default_factory=dict)  # per candidate (and "forecaster"), per step

    @property
    def name(self) -> str:
        used = [m for m, w in zip(self.methods, self.weights.sum(0)) if w > 0]
        return "+".join(used) if len(used) > 1 else used[0]

    @property
    def min_history(self) -> int:
        return max(m.min_history for m in self.methods.values())

    def _clean_tail(self, history: np.ndarray) -> np.ndarray:
        # Only the tail the methods read is cleaned, so predict costs the same on a day or a year of history.
        tail = np.asarray(history, dtype=float).ravel()[-(self.min_history + 2 * self.period):]
        if len(tail) == 0:
            raise ValueError("history is empty")
        return clean_series(tail, self.period)[0]

    def predict(self, history: np.ndarray, horizon: int) -> np.ndarray:
        """`horizon` values after the last observation in history. Never NaN (see module doc)."""
        return self._predict(history, horizon)[0]

    def predict_interval(self, history: np.ndarray, horizon: int, level: float = 0.9
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(point, lower, upper); the band is the backtest's `level` central quantile range of errors, per step."""
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        point, y = self._predict(history, horizon)
        q = np.quantile(self.residuals, [(1 - level) / 2, (1 + level) / 2], axis=0)  # (2, max_horizon)
        steps = np.minimum(np.arange(horizon), self.max_horizon - 1)  # beyond max_horizon: the last step's band
        scale = _level(y, np.array([len(y) - 1]), self.period)[0]
        lower, upper = point + scale * q[0, steps], point + scale * q[1, steps]
        return point, np.minimum(lower, point), np.maximum(upper, point)

    def _predict(self, history: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        y = self._clean_tail(history)
        if len(y) < self.min_history:
            if len(y) < self.period:
                raise ValueError(f"history has {len(y)} observations; forecasting needs at least one period "
                                 f"({self.period}), and {self.min_history} for the fitted methods")
            point = self._extend(y, np.empty(0), horizon)  # documented fallback: seasonal naive
        else:
            steps = min(horizon, self.max_horizon)
            point = np.zeros(steps)
            for j, (name, method) in enumerate(self.methods.items()):
                w = self.weights[:steps, j]
                if w.any():
                    point += w * method.predict(y, steps)
            point = self._extend(y, point, horizon)
        bad = ~np.isfinite(point)
        if bad.any():
            log.warning("forecast had %d non-finite steps; using seasonal naive there", bad.sum())
            point[bad] = self._extend(y, np.empty(0), horizon)[bad]
            if not np.isfinite(point).all():
                raise ValueError("cannot produce a finite forecast from this history")
        return point, y

    def _extend(self, y: np.ndarray, point: np.ndarray, horizon: int) -> np.ndarray:
        """Continue `point` to `horizon` steps, seasonally naive over history + forecast."""
        out = np.concatenate([y, point])
        for _ in range(horizon - len(point)):
            out = np.append(out, out[-self.period])
        return out[len(y):]


def fit_forecaster(series: np.ndarray, period: int, max_horizon: int = 36, methods: tuple[str, ...] | None = None,
                   validation: int | None = None) -> Forecaster:
    """Fit, select and combine methods by a backtest on the series' tail (module doc). `validation`: tail length in
    steps (default: one week, at most a quarter of the series). `methods`: default DEFAULT_METHODS (+ edge_lm when
    Settings.forecast_lm is set)."""
    methods = tuple(default_methods() if methods is None else methods)
    if period < 2:
        raise ValueError(f"period must be >= 2, got {period}")
    if max_horizon < 1:
        raise ValueError(f"max_horizon must be >= 1, got {max_horizon}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; registered: {sorted(METHODS)}")
    y, _ = clean_series(series, period)
    n = len(y)
    if n < period + max_horizon:
        raise ValueError(f"the series has {n} observations; fitting needs at least one period plus the horizon "
                         f"({period} + {max_horizon} = {period + max_horizon})")
    validation = validation or max(min(7 * period, n // 4), max_horizon + 1)
    split = n - validation
    candidates = [m for m in methods if split >= METHODS[m].min_fit_length(period, max_horizon)]
    candidates = available_methods(candidates) or ["seasonal_naive"]
    # A slow method (edge_lm) caps the backtest origins; all candidates then share the same, evenly spaced origins.
    cap = min((METHODS[m].max_backtest_origins or np.inf) for m in candidates)
    n_origins = validation - max_horizon + 1
    stride = 1 if n_origins <= cap else int(np.ceil(n_origins / cap))
    if stride > 1:
        log.info("forecast: backtesting on every %d-th origin (%d of %d) for %s", stride,
                 len(range(0, n_origins, stride)), n_origins, "+".join(candidates))
    result = backtest(y, period, max_horizon, methods=candidates, test_len=validation, stride=stride, clean=False)

    # Per step: the single method or the mean of two with the lowest backtest MAE.
    combos = [(a,) for a in candidates] + list(itertools.combinations(candidates, 2))
    errors = {c: np.mean([result.forecasts[m] for m in c], axis=0) - result.actual for c in combos}
    mae = {c: np.abs(e).mean(0) for c, e in errors.items()}
    weights = np.zeros((max_horizon, len(candidates)))
    combined_error = np.empty_like(result.actual)
    for h in range(max_horizon):
        best = min(combos, key=lambda c: mae[c][h])
        for m in best:
            weights[h, candidates.index(m)] = 1.0 / len(best)
        combined_error[:, h] = errors[best][:, h]
    residuals = combined_error / _level(y, result.origins, period)[:, None]

    used = [m for j, m in enumerate(candidates) if weights[:, j].any()]
    keep = [candidates.index(m) for m in used]
    fitted = {m: METHODS[m]().fit(y, period, max_horizon, plan_length=split) for m in used}  # the validated features
    bt_mae = {m: np.abs(result.forecasts[m] - result.actual).mean(0) for m in candidates}
    bt_mae["forecaster"] = np.abs(combined_error).mean(0)  # in-sample for the selection: optimistic, for information
    return Forecaster(period=period, max_horizon=max_horizon, methods=fitted, weights=weights[:, keep],
                      residuals=residuals, backtest_mae=bt_mae)


# --- backtest ----------------------------------------------------------------------------------------------------------


@dataclass
class BacktestResult:
    origins: np.ndarray  # index of the last observation each forecast saw
    actual: np.ndarray  # (n_origins, horizon)
    forecasts: dict[str, np.ndarray]  # method -> (n_origins, horizon)

    def mae(self) -> dict[str, np.ndarray]:
        return {m: np.abs(f - self.actual).mean(0) for m, f in self.forecasts.items()}

    def rmse(self) -> dict[str, np.ndarray]:
        return {m: np.sqrt(((f - self.actual) ** 2).mean(0)) for m, f in self.forecasts.items()}


def backtest(series: np.ndarray, period: int, horizon: int, methods: tuple[str, ...] | list[str] = DEFAULT_METHODS,
             test_len: int | None = None, stride: int = 1, with_forecaster: bool = False, clean: bool = True
             ) -> BacktestResult:
    """Rolling-origin backtest without look-ahead: every method is fitted on series[:split] only, and the forecast
    from origin o reads series[:o + 1] only. Origins run from split - 1 to the last one with `horizon` actual values.
    `with_forecaster` adds the full selected ensemble ("forecaster"), itself fitted on series[:split]."""
    y = clean_series(series, period)[0] if clean else np.asarray(series, dtype=float)
    n = len(y)
    test_len = test_len or max(min(7 * period, n // 4), horizon + 1)
    split = n - test_len
    if split < period or test_len <= horizon:
        raise ValueError(f"series of {n} is too short for a backtest with test_len={test_len}, horizon={horizon}")
    origins = np.arange(split - 1, n - horizon, stride)
    actual = y[origins[:, None] + np.arange(1, horizon + 1)[None, :]]
    train = y[:split]
    forecasts = {}
    for name in methods:
        need = METHODS[name].min_fit_length(period, horizon)
        if split < need:
            log.info("backtest: skipping %s (needs %d observations to fit, has %d)", name, need, split)
            continue
        forecasts[name] = METHODS[name]().fit(train, period, horizon).predict_many(y, origins, horizon)
    if with_forecaster:
        f = fit_forecaster(train, period, max_horizon=horizon, methods=tuple(methods))
        forecasts["forecaster"] = np.stack([f.predict(y[: o + 1], horizon) for o in origins])
    return BacktestResult(origins=origins, actual=actual, forecasts=forecasts)
