"""Traffic forecasting for the edge agent: one stable contract, several methods behind it.

    f = fit_forecaster(series, period)          # series: 1-D array, regular steps; period: steps per day (288 at 5 min)
    f.predict(history, horizon)                 # history: every observation up to the forecast origin
    f.predict_interval(history, horizon, 0.9)   # (point, lower, upper)
    p = f.forecast(history, horizon)            # Prediction: values, quantiles {0.025, 0.1, 0.5, 0.9, 0.975: ...}, regime

What fit does. It cleans the series (below), then runs a rolling-origin backtest on the series' own tail: every
candidate method (METHODS, netgpt.edge_agent.forecast.backtesting) is fitted on everything before the tail and
forecasts from each origin in the tail. `persistence` and `seasonal_naive` are always candidates, whatever `methods`
says. For each step h it keeps the single method, or the mean of two, with the lowest MAE there, so the forecaster is
never worse than persistence or seasonal naive on that backtest. The default learned methods are scale-free (inputs and
targets divided by the last hour's level, or built from the last value), so they leave the range they were trained
on when the traffic does. Then every candidate is refitted on the whole series (only the chosen ones when a slow
method such as edge_lm is among them).

What predict does. The backtest keeps rolling: predict forecasts with every candidate from each origin of the last
`calibration_window` steps (default two days) of the history it is given and, per step h, combines the `select_top`
methods (default 3) with the lowest discounted mean squared error of step h, weighted by the inverse of that error
(Bates and Granger's combination kept to the best three, with Stock and Watson's discounting). The error is taken over
the last `selection_window` origins whose step h is already observed (default half a period: 12 hours at 5 min), the
error from an origin weighted by 0.5 ** (age / `selection_half_life`) (default a twelfth of a period: 2 hours at 5 min;
the age counted in origins from the newest of them); fit's choice while fewer than 36 of them, at 5 min, are observed.
Until session 13 (2026-12-07) the error was a plain mean over the last 6 hours. The window also forgets: with the
discount alone, a burst's error from a day ago still outweighed a quiet port's recent ones
(tests/forecast/test_quiet_ports.py). A method with a `max_step` (damped_trend: the last value plus a damped recent
trend, steps 1-3) is a candidate at steps up to it only, at fit and at predict; it was added for WC98's 5-minute error,
where the combination lost to persistence on the held-out part (on the training parts: 6.5% lower error at 5 min on WC98
and 0.8% on UK, 1 h unchanged; README "Forecasting"). Chosen on the training parts of the bench traces only (fitted on
their first 75%, scored on the rest): there, over steps 1-12, the best-two combination beat every single method, the
best single per step (1.04-1.05x the combination's MAE, one-day windows), a choice per step among the singles and the
combinations (1.01-1.04x), equal weights and simple exponential smoothing as one more candidate; a flat 6-hour window
gave 0.97x (UK) and 0.96x (WC98) the one-day window's MAE, and 3 to 8 hours were within 1.3% (UK) and 2.1% (WC98) of
each other; the discounted 12-hour window gives 0.985x (UK) and 0.995x (WC98) the flat 6-hour one's (README
"Forecasting"). So a method that stops working (a holiday, a tournament) is dropped within hours, persistence and
seasonal naive stay in the race, and nothing after the origin is read. `rolling_selection=False` keeps fit's choice.

Quantiles (split conformal, on a rolling window, per step). The backtest errors of the chosen combination, each divided
by the level at its origin (mean of the last hour, but at least a quarter of the last week's: clean.recent_level,
LEVEL_FLOOR), are the long-run pool. At predict time the forecaster also forecasts from every origin of the last
`calibration_window` steps (default two days) of the history it is given and measures, per step h, the errors that are
already observed (about 576 of them per step). A quantile of step h is the weighted quantile of pool and rolling errors
of that step (the rolling ones carry `recent_weight` of the mass: by default all of it, the pool only serves while no
rolling error is observed), times today's level, added to the point forecast, but never further from it than the largest
error of step h in the window, in the traffic's units (a burst in the last hour of a quiet port would otherwise multiply
the quiet hours' misses of bursts, hundreds of levels each, by the burst's level). So the band follows the level, is as
wide as the last two days' errors at that horizon, and widens within hours when the traffic turns less predictable. Why
the rolling errors alone: the fit-time pool comes from the week before the fitted part ends, and on both bench traces'
training parts it made the 5-minute band too wide (80% band: 87-88% covered); the last two days' errors alone kept every
step 1-12 within 4.1 points of 80% and 95% on both (README "Forecasting"; on the held-out part they did not, see there).
A known weakness: for two days after a fit, the window holds errors of the learned methods on data they were fitted on,
which are too small, so the bands can be too narrow then (UK, the three days right after a fit on three weeks: the 80%
band held 72% at 1 h; from two days after the fit on, tests/forecast/test_calibration.py).

Regime changes. When REGIME_RUN actual values in a row all lie outside the 95% band of the forecast made just before
them (steps 1..REGIME_RUN from one origin), on the same side (a flash crowd, an outage, a rerouting), that is a break,
and the forecaster is in a regime change until `regime_clear` actual values in a row (default 12: an hour at 5 min),
all after the latest break's run, each lay inside the 95% band of the step-1 forecast made just before it, and for a
day (`regime_hold`) after the latest break at most. (It used to last the whole day after any break: on the bench
traces' training parts a regime was then in force at 39% (UK) and 61% (WC98) of the origins; now 3% and 12%.) For
the day after each break, whether the regime has ended or not, the forecaster re-weights the history toward the
recent past: everything before each break of the hold is multiplied by the ratio of the values after
the break (up to max_horizon of them) to what the forecast from just before the break expected, and the chosen methods
forecast from that history, so that their profile features (yesterday, last week) see the new level at once instead of
after days; but only for a break to a level the history before it has not reached (above its largest value, or below its
smallest): a quiet port's repeated bursts leave a quiet forecast's band each time, yet they are not a new level, and
multiplying a history that holds bursts by a burst's ratio made forecasts of 20x to 1000x the largest value seen
(tests/forecast/test_quiet_ports.py). The rolling errors then carry `regime_recent_weight` of the quantiles' mass.
`Prediction.regime` says so (start, direction, actual / forecast ratio, the history's factor); the online loop publishes
it (netgpt.edge_agent.forecast.loop).

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
  the learned methods need, only persistence and seasonal naive are fitted. predict with a history shorter than the
  chosen methods need falls back to seasonal naive if the history holds one period, and raises ValueError otherwise.
- Horizons beyond max_horizon (the longest step fitted, default 36): those steps continue seasonally naive from the
  forecast, with the last step's band. A forecast is never NaN: non-finite steps are replaced by the seasonal naive
  value, and if that is not finite either, predict raises ValueError instead of returning it.
- Quantile levels outside (0, 1), or a level for predict_interval outside (0, 1): ValueError.
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field

import numpy as np

# The method registry and the backtest live in backtesting.py; METHODS, DEFAULT_METHODS and backtest stay importable here.
from netgpt.edge_agent.forecast.backtesting import (ALWAYS, DEFAULT_METHODS, METHODS, BacktestResult,
                                                 available_methods, backtest, default_methods)
from netgpt.edge_agent.forecast.clean import clean_series, counters_to_rates, recent_level, resample_to_grid
from netgpt.edge_agent.forecast.methods import Method

log = logging.getLogger(__name__)

__all__ = ["METHODS", "DEFAULT_METHODS", "Forecaster", "Prediction", "Regime", "backtest", "backtest_with_forecaster",
           "fit_forecaster", "clean_series", "counters_to_rates", "resample_to_grid"]

QUANTILES = (0.025, 0.1, 0.5, 0.9, 0.975)
REGIME_RUN = 3  # consecutive actual values outside their step's 95% band (one origin's forecast) for a regime change


def weighted_quantiles(pool: np.ndarray, recent: np.ndarray, recent_weight: float, levels: np.ndarray) -> np.ndarray:
    """Quantiles `levels` of pool ∪ recent, where the recent samples together weigh `recent_weight` (none: 0)."""
    if len(recent) == 0 or recent_weight <= 0:
        return np.quantile(pool, levels)
    if recent_weight >= 1:
        return np.quantile(recent, levels)
    values = np.concatenate([pool, recent])
    w = np.concatenate([np.full(len(pool), (1 - recent_weight) / len(pool)), np.full(len(recent), recent_weight / len(recent))])
    order = np.argsort(values)
    cum = np.cumsum(w[order]) - w[order] / 2  # midpoints, as np.quantile's interpolation of equal weights
    return np.interp(levels, cum, values[order])


def selection_min(window: int, half_life: float) -> int:
    """How many observed origins the online re-selection needs before it replaces fit's choice: half of 3 half-lives
    (half the window when the error is a flat mean), 36 at 5 min as with the 6-hour window before."""
    return max(1, int(min(window, 3 * half_life)) // 2)


# --- the forecaster ----------------------------------------------------------------------------------------------------


@dataclass
class Regime:
    """A regime change in force at the origin: REGIME_RUN actual values in a row left their forecast's 95% band."""

    started: int  # steps before the origin the latest run of values outside the band began (0: at the origin)
    direction: str  # "up" (above the band: a flash crowd) or "down" (below: an outage)
    ratio: float  # actual / forecast over that run
    steps_outside: int  # how many origins within the hold saw such a run on that side
    level_ratio: float = 1.0  # what the history before the break(s) was multiplied by for this forecast


@dataclass
class Prediction:
    values: np.ndarray  # the point forecast, (horizon,)
    quantiles: dict[float, np.ndarray]  # level -> (horizon,), non-decreasing in the level
    regime: Regime | None
    model: str  # the methods behind `values`

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) of the central `level` interval, if both of its quantiles were asked for."""
        lo, hi = round((1 - level) / 2, 6), round((1 + level) / 2, 6)
        if lo not in self.quantiles or hi not in self.quantiles:
            raise ValueError(f"no {level:.0%} interval: quantiles {sorted(self.quantiles)} were computed")
        return self.quantiles[lo], self.quantiles[hi]


@dataclass
class Forecaster:
    """Fitted methods plus, per step, which of them to average and the scaled residuals for quantiles."""

    period: int
    max_horizon: int
    methods: dict[str, Method]
    weights: np.ndarray  # (max_horizon, len(methods)): per step, the weight of each method (rows sum to 1)
    residuals: np.ndarray  # (n_origins, max_horizon): backtest errors of the combination, divided by the level
    backtest_mae: dict[str, np.ndarray] = field(default_factory=dict)  # per candidate (and "forecaster"), per step
    recent_weight: float = 1.0  # share of the quantiles' mass carried by the recent errors (chosen on the bench traces'
    # training parts only: fitted on their first 75%, scored on the rest; see README "Forecasting")
    regime_recent_weight: float = 1.0  # the same during a regime change
    # Steps a regime change (and the re-weighting of the history before its breaks) lasts after the latest break
    # (None: one period, a day). After that the history is read as it is again: the learned methods' 7-day profile
    # then still holds the old level on its older days, and the online re-selection has to carry that (not measured).
    regime_hold: int | None = None
    # A regime change ends earlier than the hold once this many actual values in a row, the latest ones, each lay
    # inside the 95% band of the forecast made just before it (step 1), all after the latest break's run (None: only
    # the hold ends it). The history's re-weighting for a break to a new level still lasts the hold (module doc).
    regime_clear: int | None = 12
    # Origins (per step) whose errors calibrate the quantiles at predict time (None: two periods, two days).
    calibration_window: int | None = None
    # Origins (per step) whose errors choose the combination at predict time (None: half a period, 12 hours at 5 min;
    # at most the calibration window, whose forecasts it reuses), their errors discounted by a half-life of
    # `selection_half_life` origins (None: a twelfth of a period, 2 hours at 5 min; math.inf: a plain mean). Since
    # session 13 (a flat 6-hour window before), chosen on the bench traces' training parts only; with the discount
    # over two days, a quiet port's day-old bursts kept persistence out of the combination (README "Forecasting").
    selection_window: int | None = None
    selection_half_life: float | None = None
    # Breaks whose factor is nearer 1 than this (either way: x2 or x0.5) leave the history as is: smaller ones are left
    # to the methods' own last-hour level. Chosen on the bench traces' training parts only (1.0 and 1.5 re-weighted on
    # flash crowds there and cost up to 10% at 1 h on WC98; 2.0 cost nothing on either trace).
    reweight_min_ratio: float = 2.0
    # How many methods the online re-selection combines per step. 3 since 2026-12-07 (was 2), chosen on the bench
    # traces' training parts only (bench/forecast_rules.py, 6-hour window, MAE over steps 1-12): top 2 82.3 (UK) /
    # 9,716 (WC98), top 3 81.7 / 9,552, top 4 82.0 / 9,528, all six 82.1 / 9,637 (README "Forecasting").
    select_top: int = 3
    rolling_selection: bool = True  # re-select per step on the rolling window at predict time (see `_combined`)

    def __post_init__(self) -> None:
        self.window = self.calibration_window or 2 * self.period
        for name in ("selection_window", "selection_half_life"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0 (None: the default), got {value}")
        self.select_window = min(self.selection_window or max(self.period // 2, 1), self.window)
        self.select_half_life = self.selection_half_life or max(self.period / 12, 1.0)
        self.select_min = selection_min(self.select_window, self.select_half_life)
        self.band = np.quantile(self.residuals, [0.025, 0.975], axis=0)  # the 95% band per step regimes are seen by

    def _name(self, weights: np.ndarray) -> str:
        used = [m for m, w in zip(self.methods, weights.sum(0)) if w > 0]
        return "+".join(used) if len(used) > 1 else used[0]

    @property
    def name(self) -> str:
        return self._name(self.weights)

    @property
    def min_history(self) -> int:
        return max(m.min_history for m in self.methods.values())

    def _clean_tail(self, history: np.ndarray) -> np.ndarray:
        # Only the tail the methods read is cleaned, so predict costs the same on a day or a year of history.
        need = self.min_history + self.max_horizon + REGIME_RUN + max(self.period, self.regime_hold or 0, self.window)
        tail = np.asarray(history, dtype=float).ravel()[-need:]
        if len(tail) == 0:
            raise ValueError("history is empty")
        return clean_series(tail, self.period)[0]

    def predict(self, history: np.ndarray, horizon: int) -> np.ndarray:
        """`horizon` values after the last observation in history. Never NaN (see module doc)."""
        return self.forecast(history, horizon, levels=()).values

    def predict_interval(self, history: np.ndarray, horizon: int, level: float = 0.9
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(point, lower, upper) of the central `level` interval, per step."""
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        p = self.forecast(history, horizon, levels=((1 - level) / 2, (1 + level) / 2))
        lower, upper = p.interval(level)
        return p.values, lower, upper

    def forecast(self, history: np.ndarray, horizon: int, levels=QUANTILES) -> Prediction:
        """Point forecast, quantiles at `levels` and the regime state, from the end of history (module doc)."""
        levels = np.round(np.asarray(levels, dtype=float), 6)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if ((levels <= 0) | (levels >= 1)).any():
            raise ValueError(f"quantile levels must be in (0, 1), got {levels.tolist()}")
        y = self._clean_tail(history)
        t, steps = len(y) - 1, min(horizon, self.max_horizon)
        if len(y) < self.min_history:
            if len(y) < self.period:
                raise ValueError(f"history has {len(y)} observations; forecasting needs at least one period "
                                 f"({self.period}), and {self.min_history} for the fitted methods")
            point, model = self._extend(y, np.empty(0), horizon), "seasonal_naive"  # documented fallback
            offsets = np.quantile(self.residuals, levels, axis=0).T if len(levels) else np.zeros((self.max_horizon, 0))
            regime = None
        else:
            point, offsets, regime, model = self._predict(y, steps, levels)
            point = self._extend(y, point, horizon)
        bad = ~np.isfinite(point)
        if bad.any():
            log.warning("forecast had %d non-finite steps; using seasonal naive there", bad.sum())
            point[bad] = self._extend(y, np.empty(0), horizon)[bad]
            if not np.isfinite(point).all():
                raise ValueError("cannot produce a finite forecast from this history")
        scale = recent_level(y, np.array([t]), floor_window=7 * self.period)[0]
        at = np.minimum(np.arange(horizon), len(offsets) - 1)  # beyond max_horizon: the last step's band
        quantiles = {}
        for j, q in enumerate(levels):
            # The point forecast stays inside every band that should hold it: lower quantiles below, upper above.
            band = point + scale * offsets[at, j]
            quantiles[float(q)] = np.minimum(band, point) if q < 0.5 else np.maximum(band, point) if q > 0.5 else band
        ordered = sorted(quantiles)
        for a, b in zip(ordered, ordered[1:]):
            quantiles[b] = np.maximum(quantiles[b], quantiles[a])
        return Prediction(values=point, quantiles=quantiles, regime=regime, model=model)

    @property
    def online(self) -> bool:
        """Whether predict re-selects per step on the rolling window: not with a slow method (edge_lm) among them."""
        return self.rolling_selection and all(m.max_backtest_origins is None for m in self.methods.values())

    def _combined(self, y: np.ndarray, origins: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(forecasts of the combination from `origins` of y, (len(origins), max_horizon); its weights per step).
        Online (see `online`): per step, the `select_top` methods with the lowest discounted mean squared error over
        the errors of the last `selection_window` origins that are already observed (`seen`; half-life
        `selection_half_life` origins), weighted by the inverse of it (Bates and Granger's combination, kept to the
        best few); with fewer than `select_min` of them, fit's choice."""
        hmax, names = self.max_horizon, list(self.methods)
        use = range(len(names)) if self.online else [j for j in range(len(names)) if self.weights[:, j].any()]
        runs = {j: self.methods[names[j]].predict_many(y, origins, hmax) for j in use}
        weights = self.weights
        if self.online:
            ahead = np.minimum(origins[:, None] + np.arange(1, hmax + 1)[None, :], len(y) - 1)
            weights = self.weights.copy()
            use = list(use)
            for h in range(hmax):
                rows = np.flatnonzero(seen[:, h])[-self.select_window:]
                if len(rows) < self.select_min:
                    continue
                actual = y[ahead[rows, h]]
                discount = 0.5 ** ((origins[rows[-1]] - origins[rows]) / self.select_half_life)
                able = [j for j in use if self.methods[names[j]].covers(h)]  # a short-range method's steps only
                mse = np.array([np.average((runs[j][rows, h] - actual) ** 2, weights=discount) for j in able])
                best = np.argsort(mse)[:self.select_top]
                inv = 1.0 / (mse[best] + 1e-12 * mse.max() + 1e-300)  # finite when both are exact (a flat series)
                weights[h] = 0.0
                weights[h, [able[b] for b in best]] = inv / inv.sum()
        out = np.zeros((len(origins), hmax))
        for j, f in runs.items():
            out += weights[:, j] * f
        return out, weights

    def _predict(self, y: np.ndarray, steps: int, levels: np.ndarray):
        """(point over `steps`, per-step scaled quantile offsets (max_horizon, len(levels)), regime, model name)."""
        t, hmax = len(y) - 1, self.max_horizon
        k, hold = min(REGIME_RUN, hmax), self.regime_hold or self.period
        # One set of origins serves both the regime check (the last `hold` origins, their first k steps) and the rolling
        # calibration (the last `calibration_window` origins whose step h is already observed, for every h).
        origins = np.arange(max(t - max(hold + k, self.window + hmax), self.min_history - 1), t + 1)
        ahead = origins[:, None] + np.arange(1, hmax + 1)[None, :]
        seen = ahead <= t
        normal, weights = self._combined(y, origins, seen)
        actual = np.where(seen, y[np.minimum(ahead, t)], np.nan)
        scale = recent_level(y, origins, floor_window=7 * self.period)
        regime, breaks = self._regime(actual[:, :k], normal[:, :k], scale, origins, hold)
        # The rolling errors calibrate on this pass, whatever a regime change does next: a break's factor is taken
        # from values that earlier origins forecast, so errors on the re-weighted history would look too small.
        err = (actual - normal) / scale[:, None]
        total = 1.0
        if breaks:
            # Re-weight toward the recent past: everything before each break is multiplied by the ratio of what came
            # after it (up to max_horizon steps) to what the forecast from just before it expected, so the profile
            # features (yesterday, last week) see today's level at once. A flash crowd that ends gives a second break
            # with about the inverse ratio, and the history before the crowd comes back to about where it was.
            z = y.copy()
            for b in breaks:
                i, m = b - 1 - origins[0], min(t - b + 1, hmax)
                after = y[b: b + m].mean()
                r = float(np.clip(after / max(abs(normal[i, :m].mean()), 1e-12), 0.05, 20.0))
                if abs(np.log(r)) < np.log(self.reweight_min_ratio):
                    continue  # a break that small is left to the methods' own last-hour level
                # A new level is one the history before the break (as re-weighted so far) has not reached. On a
                # quiet port with repeated bursts every burst leaves the band of a quiet forecast, but the history
                # holds bursts as high: multiplying that history by the burst's ratio (x20) made yesterday's bursts
                # 20x anything seen, once per burst of the hold (forecasts of 1e3-1e5 on a port that never exceeded
                # 600, tests/forecast/test_quiet_ports.py).
                before = z[:b]
                if (r > 1 and after <= before.max()) or (r < 1 and after >= before.min()):
                    continue
                z[:b] *= r
                total *= r
            if regime is not None:
                regime.level_ratio = total
            if total != 1.0:
                normal, weights = self._combined(z, origins, seen)
        share = self.regime_recent_weight if regime is not None else self.recent_weight
        offsets = np.zeros((hmax, len(levels)))
        if len(levels):
            for h in range(hmax):
                rows = np.flatnonzero(seen[:, h])[-self.window:]
                recent = err[rows, h]
                offsets[h] = weighted_quantiles(self.residuals[:, h], recent, share, levels)
                if len(rows):
                    # Scaled errors times today's level assume that errors grow with the level. When the level at
                    # the origin is far above the levels the window's errors were made at (a burst in the last hour
                    # of a quiet port), that multiplies a quiet hour's miss of a burst (hundreds of levels) by the
                    # burst's level: a 90% quantile of 4.6e5 on a port that never exceeded 600. So no quantile of
                    # step h lies further from the point forecast than the largest error of step h in the window, in
                    # the traffic's units. After a level shift the window holds the shift's own errors, so the band
                    # can still widen with it (tests/forecast/test_regime.py).
                    largest = np.abs(actual[rows, h] - normal[rows, h]).max() / scale[-1]
                    offsets[h] = np.clip(offsets[h], -largest, largest)
        name = self._name(weights) + (f" (regime change: history x{total:.2f})" if regime is not None else
                                      f" (after a regime change: history x{total:.2f})" if total != 1.0 else "")
        return normal[-1, :steps], offsets, regime, name

    def _regime(self, actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray, origins: np.ndarray, hold: int
                ) -> tuple[Regime | None, list[int]]:
        """(regime in force at the last origin, the breaks within the hold in time order). A break is the first step of
        a run of REGIME_RUN actual values that all left the normal forecast's 95% band of their step on one side,
        from one origin; consecutive such origins on one side are one break. The regime ends after the hold, or
        earlier once the last `regime_clear` actual values (all after the latest break's run) each lay inside the
        95% band of step 1 (module doc); the breaks are returned either way."""
        k = actual.shape[1]
        err = (actual - forecast) / scale[:, None]  # NaN where the actual value is not known yet: never outside
        above, below = (err > self.band[1, :k]).all(1), (err < self.band[0, :k]).all(1)
        side = np.where(above, 1, np.where(below, -1, 0))
        within = origins >= origins[-1] - k - hold
        hits = np.flatnonzero((side != 0) & within)
        if len(hits) == 0:
            return None, []
        starts = [i for i in hits if i == 0 or side[i - 1] != side[i] or not within[i - 1]]
        breaks = [int(origins[i]) + 1 for i in starts]
        o = hits[-1]
        sign = side[o]
        if self.regime_clear:
            # Step 1 of origin i is the value at origins[i] + 1; the run of origin o ends with step 1 of o + k - 1,
            # and the last origin's step 1 is not known yet.
            after = err[o + k: -1, 0]
            if len(after) >= self.regime_clear:
                last = after[-self.regime_clear:]
                if ((last >= self.band[0, 0]) & (last <= self.band[1, 0])).all():
                    return None, breaks
        regime = Regime(started=int(origins[-1] - origins[o] - 1), direction="up" if sign > 0 else "down",
                        ratio=float(actual[o].sum() / max(abs(forecast[o].sum()), 1e-12)),
                        steps_outside=int((side[within] == sign).sum()))
        return regime, breaks

    def _extend(self, y: np.ndarray, point: np.ndarray, horizon: int) -> np.ndarray:
        """Continue `point` to `horizon` steps, seasonally naive over history + forecast."""
        out = np.concatenate([y, point])
        for _ in range(horizon - len(point)):
            out = np.append(out, out[-self.period])
        return out[len(y):]


def fit_forecaster(series: np.ndarray, period: int, max_horizon: int = 36, methods: tuple[str, ...] | None = None,
                   validation: int | None = None, refits: int = 1) -> Forecaster:
    """Fit, select and combine methods by a backtest on the series' tail (module doc). `validation`: tail length in
    steps (default: one week, at most a quarter of the series), backtested with `refits` refits (see backtest).
    `methods`: default DEFAULT_METHODS (+ edge_lm when
    Settings.forecast_lm is set); persistence and seasonal_naive are added when missing."""
    methods = tuple(default_methods() if methods is None else methods)
    methods = tuple(m for m in ALWAYS if m not in methods) + methods
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
    candidates = available_methods(candidates) or list(ALWAYS)
    # A slow method (edge_lm) caps the backtest origins; all candidates then share the same, evenly spaced origins.
    cap = min((METHODS[m].max_backtest_origins or np.inf) for m in candidates)
    n_origins = validation - max_horizon + 1
    stride = 1 if n_origins <= cap else int(np.ceil(n_origins / cap))
    if stride > 1:
        log.info("forecast: backtesting on every %d-th origin (%d of %d) for %s", stride,
                 len(range(0, n_origins, stride)), n_origins, "+".join(candidates))
    result = backtest(y, period, max_horizon, methods=candidates, test_len=validation, stride=stride, clean=False,
                      refits=refits)

    # Per step: the single method or the mean of two with the lowest backtest MAE.
    combos = [(a,) for a in candidates] + list(itertools.combinations(candidates, 2))
    errors = {c: np.mean([result.forecasts[m] for m in c], axis=0) - result.actual for c in combos}
    mae = {c: np.abs(e).mean(0) for c, e in errors.items()}
    weights = np.zeros((max_horizon, len(candidates)))
    combined_error = np.empty_like(result.actual)
    for h in range(max_horizon):
        able = [c for c in combos if all(METHODS[m].covers(h) for m in c)]
        best = min(able, key=lambda c: mae[c][h])
        for m in best:
            weights[h, candidates.index(m)] = 1.0 / len(best)
        combined_error[:, h] = errors[best][:, h]
    residuals = combined_error / recent_level(y, result.origins, floor_window=7 * period)[:, None]

    # Every candidate is refitted when predict re-selects online (no slow method among them); else the chosen ones.
    online = all(METHODS[m].max_backtest_origins is None for m in candidates)
    used = [m for j, m in enumerate(candidates) if online or weights[:, j].any()]
    keep = [candidates.index(m) for m in used]
    fitted = {m: METHODS[m]().fit(y, period, max_horizon, plan_length=split) for m in used}  # the validated features
    bt_mae = {m: np.abs(result.forecasts[m] - result.actual).mean(0) for m in candidates}
    bt_mae["forecaster"] = np.abs(combined_error).mean(0)  # in-sample for the selection: optimistic, for information
    return Forecaster(period=period, max_horizon=max_horizon, methods=fitted, weights=weights[:, keep],
                      residuals=residuals, backtest_mae=bt_mae)


def backtest_with_forecaster(series: np.ndarray, period: int, horizon: int,
                             methods: tuple[str, ...] | list[str] = DEFAULT_METHODS, clean: bool = True,
                             **kwargs) -> BacktestResult:
    """backtest(...) (backtesting.py, the same arguments) plus the selected ensemble's row, "forecaster": fit_forecaster
    on the same series[:split] the methods were fitted on, predicting from every origin."""
    y = clean_series(series, period)[0] if clean else np.asarray(series, dtype=float)
    result = backtest(y, period, horizon, methods, clean=False, **kwargs)  # cleaned once, here
    split = int(result.origins[0]) + 1  # the origins start at the last fitted observation
    f = fit_forecaster(y[:split], period, max_horizon=horizon, methods=tuple(methods))
    result.forecasts["forecaster"] = np.stack([f.predict(y[: o + 1], horizon) for o in result.origins])
    return result
