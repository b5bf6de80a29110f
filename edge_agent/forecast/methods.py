"""Forecasting methods behind one small interface (the table `fit_forecaster` picks them from by name is
netgpt.edge_agent.forecast.backtesting.METHODS).

A method is fitted on a clean series (no NaN, see netgpt.edge_agent.forecast.forecaster) and then forecasts from any history that ends at
the forecast origin. Every method is *direct*: step h is predicted from what is known at the origin, never from its own
earlier predictions, so errors do not compound over the horizon.

- `persistence`: the last value, for every step. Hard to beat a few minutes ahead, and the first to follow a new level.
- `seasonal_naive`: the value one period (one day) earlier.
- `seasonal_drift`: the last value plus the change yesterday's (smoothed) values made from the origin's time of day to
  the target's, scaled by how today's last hour runs against yesterday's. It carries a new level over at once (it starts
  from the last value) and a growing or shrinking day shape by the ratio, so it leaves the range it has seen.
- `ridge_lags`: the baseline the issue names: one ridge regression per step h on the last 12 values plus the value at
  the target's time yesterday (t+h-P) and last week (t+h-7P).
- `profile_ridge`: one ridge per step h on scale-free features: recent values and means, the target time's value
  yesterday and last week (smoothed over +-2 steps), a 7-day profile at the target time, how far today runs above or
  below that profile, and the recent volatility. Everything is divided by the mean of the last hour (`level_window`
  steps, relative to the latest values rather than to the day: on the WC98 trace, whose level grows several-fold
  through the tournament, dividing by the day's mean left the trees outside their training range; but at least a
  quarter of the mean over the profile's days, clean.LEVEL_FLOOR, so a quiet hour between bursts does not divide the
  bursts by ~0), so a trend or a
  level shift does not put the inputs outside what was seen in training. The target is the next value minus the
  profile, scaled the same way.
- `boosted`: `profile_ridge` plus one gradient-boosted tree model for all steps (the step is a feature) fitted on what
  the ridge got wrong. Trees alone approximate "today's value carries over" badly; on top of a linear stage they only
  have to learn the non-linear rest.

Another method subclasses Method, sets `name` and is listed in backtesting.METHODS: netgpt.edge_agent.forecast.lm's
`edge_lm` (the edge LM with its `forecast` LoRA adapter) does, and overrides `unavailable()` (a reason to leave it out,
or None) and `max_backtest_origins` (fit_forecaster then backtests on at most that many origins).
"""
from __future__ import annotations

from contextlib import nullcontext

import numpy as np
from scipy.signal import lfilter
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from threadpoolctl import ThreadpoolController

from netgpt.edge_agent.forecast.clean import LEVEL_FLOOR

_THREADPOOLS: list[ThreadpoolController] = []  # found once per process: finding the libraries costs ~5 ms


def _one_thread():
    if not _THREADPOOLS:
        _THREADPOOLS.append(ThreadpoolController())
    return _THREADPOOLS[0].limit(limits=1, user_api="openmp")

class Method:
    """fit(y, period, max_horizon) -> self; predict(history, horizon) -> (horizon,); predict_many for backtests."""

    name = "method"  # the name backtesting.METHODS lists it under
    min_fit: int = 0  # observations fit needs (set by min_fit_length); min_history: what predict needs (set by fit)
    min_history: int = 1
    max_backtest_origins: int | None = None  # a slow method caps fit_forecaster's backtest origins (None: no cap)
    max_step: int | None = None  # the forecaster combines it at steps 1..max_step only (None: at every step)

    @classmethod
    def covers(cls, h: int) -> bool:
        """Whether the forecaster may combine the method at step h + 1 (h counts from 0): up to max_step."""
        return cls.max_step is None or h < cls.max_step

    @classmethod
    def unavailable(cls) -> str | None:
        """Why the method cannot run here (fit_forecaster then leaves it out and logs this), or None."""
        return None

    @classmethod
    def min_fit_length(cls, period: int, max_horizon: int) -> int:
        return period

    def fit(self, y: np.ndarray, period: int, max_horizon: int, plan_length: int | None = None) -> "Method":
        """plan_length: decide which features to use as if y had this length (fit_forecaster refits on the whole
        series with the feature set that was validated on a shorter one)."""
        raise NotImplementedError

    def predict(self, history: np.ndarray, horizon: int) -> np.ndarray:
        return self.predict_many(history, np.array([len(history) - 1]), horizon)[0]

    def predict_many(self, y: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
        """Forecasts from several origins of one series, (len(origins), horizon); each row uses only y[:origin + 1]."""
        return np.stack([self.predict(y[: o + 1], horizon) for o in origins])


def _seasonal_offsets(h: np.ndarray, period: int) -> np.ndarray:
    """How far back the same time of day is from the target t+h, as a multiple of period that is >= h."""
    return period * np.ceil(h / period).astype(int)


class SeasonalNaive(Method):
    name = "seasonal_naive"

    def fit(self, y, period, max_horizon, plan_length=None):
        self.period = period
        self.min_history = period
        return self

    def predict_many(self, y, origins, horizon):
        h = np.arange(1, horizon + 1)
        idx = origins[:, None] + h[None, :] - _seasonal_offsets(h, self.period)[None, :]
        return y[idx]


class Persistence(Method):
    name = "persistence"

    def fit(self, y, period, max_horizon, plan_length=None):
        return self

    def predict_many(self, y, origins, horizon):
        return np.repeat(y[origins][:, None], horizon, axis=1)


class SeasonalDrift(Method):
    name = "seasonal_drift"
    window = 12  # steps of "today's last hour" against yesterday's, for the ratio

    @classmethod
    def min_fit_length(cls, period, max_horizon):
        return 2 * period  # a backtest origin must see yesterday's window

    def fit(self, y, period, max_horizon, plan_length=None):
        self.period = period
        self.min_history = period + self.window + 2
        self.eps = 1e-6 * (float(np.mean(np.abs(y))) + 1e-12)
        return self

    def predict_many(self, y, origins, horizon):
        p, w, h = self.period, _Windows(y), np.arange(1, horizon + 1)
        t = origins[:, None]
        season = t + h[None, :] - _seasonal_offsets(h, p)[None, :]
        # The ratio is clipped: yesterday's last hour near zero (an outage) must not blow the change up.
        ratio = np.clip((w.mean(origins, self.window) + self.eps) / (w.mean(origins - p, self.window) + self.eps),
                        0.2, 5.0)
        change = w.centred(season, t) - w.centred(origins - p, origins - p)[:, None]
        return y[origins][:, None] + ratio[:, None] * change


class DampedTrend(Method):
    """The last value plus a damped trend: persistence plus the smoothed recent change (Holt's linear method with its
    level's smoothing at 1: the level is the last value), fading by phi per step ahead, so a ramp-up (WC98's evening
    climbs, a flash crowd building) carries on for a few steps and then levels off. Linear in the values: scale-free
    by construction, it leaves any range it has seen. The forecaster combines it at steps 1..max_step only: further
    ahead the extrapolated slope is mostly noise. beta, phi and max_step were chosen on the bench traces' training parts
    only (README "Forecasting": with it at every step WC98's 1-hour error grew 3-8%; parameters fitted per series on
    the fitted part's last two weeks chose a smoothed level, alpha 0.5, that was 1.2x persistence on WC98's scored
    part)."""

    name = "damped_trend"
    beta, phi = 0.5, 0.9
    max_step = 3
    max_slope = 0.1
    warmup = 48  # steps the filter runs before the first origin it forecasts from; the slope's memory is (1-beta)*phi

    def fit(self, y, period, max_horizon, plan_length=None):
        self.min_history = 2
        return self

    def predict_many(self, y, origins, horizon):
        start = max(0, int(origins.min()) - self.warmup)
        seg = np.asarray(y[start: int(origins.max()) + 1], dtype=float)
        # slope_t = beta * (y_t - y_t-1) + (1 - beta) * phi * slope_t-1, from 0 at `start`: a first-order filter
        b, f = self.beta, self.phi
        slopes = np.concatenate([[0.0], lfilter([b], [1.0, -(1 - b) * f], np.diff(seg))])
        level, slope = seg[origins - start], slopes[origins - start]
        damp = np.cumsum(f ** np.arange(1, horizon + 1))
        # At most max_slope of the level per step: the first step of a burst on a quiet port (0.2 -> 600) is a slope
        # of half the burst, and the trend would carry it to 2.1x anything seen (tests/forecast/test_quiet_ports.py).
        cap = self.max_slope * np.abs(level)
        return level[:, None] + np.clip(slope, -cap, cap)[:, None] * damp[None, :]


class RidgeLags(Method):
    name = "ridge_lags"
    n_lags = 12
    alphas = np.logspace(-3, 3, 7)

    @classmethod
    def min_fit_length(cls, period, max_horizon):
        return 2 * period + max_horizon

    def _design(self, y: np.ndarray, t: np.ndarray, h: int) -> np.ndarray:
        cols = [y[t - k] for k in range(self.n_lags)]
        cols.append(y[t + h - _seasonal_offsets(np.array([h]), self.period)[0]])
        if self.use_week:
            cols.append(y[t + h - _seasonal_offsets(np.array([h]), 7 * self.period)[0]])
        return np.stack(cols, axis=-1)

    def fit(self, y, period, max_horizon, plan_length=None):
        self.period, self.max_horizon = period, max_horizon
        week = _seasonal_offsets(np.array([max_horizon]), 7 * period)[0]
        self.use_week = (plan_length or len(y)) >= week + 7 * period + max_horizon  # a week of origins that see last week
        self.min_history = max(self.n_lags, _seasonal_offsets(np.array([max_horizon]), period)[0],
                               week if self.use_week else 0)
        self.scale = float(np.std(y)) or 1.0  # one scale for all inputs (they are the same series), so alpha means the same
        coefs, intercepts = [], []
        for h in range(1, max_horizon + 1):
            t = np.arange(self.min_history - 1, len(y) - h)
            model = RidgeCV(alphas=self.alphas).fit(self._design(y, t, h) / self.scale, y[t + h] / self.scale)
            coefs.append(model.coef_)
            intercepts.append(model.intercept_)
        self.coef, self.intercept = np.array(coefs), np.array(intercepts)
        return self

    def predict_many(self, y, origins, horizon):
        out = np.empty((len(origins), horizon))
        for h in range(1, horizon + 1):
            out[:, h - 1] = self._design(y, origins, h) @ self.coef[h - 1] + self.intercept[h - 1] * self.scale
        return out


class _Windows:
    """O(1) window means and stds of one series, from cumulative sums (computed once per call, not per window)."""

    def __init__(self, y: np.ndarray):
        self.c1 = np.concatenate([[0.0], np.cumsum(y)])
        self.c2 = np.concatenate([[0.0], np.cumsum(y * y)])

    def mean(self, end: np.ndarray, width: int) -> np.ndarray:  # mean of y[end-width+1 .. end]
        return (self.c1[end + 1] - self.c1[end + 1 - width]) / width

    def centred(self, centre: np.ndarray, limit: np.ndarray, half: int = 2) -> np.ndarray:
        """Mean of y[centre-half .. centre+half], cut so it never reaches past `limit` (the origin)."""
        end = np.minimum(centre + half, limit)
        return (self.c1[end + 1] - self.c1[centre - half]) / (end - centre + half + 1)

    def std(self, end: np.ndarray, width: int) -> np.ndarray:
        m = self.mean(end, width)
        return np.sqrt(np.maximum((self.c2[end + 1] - self.c2[end + 1 - width]) / width - m * m, 0.0))


class Boosted(Method):
    name = "boosted"
    profile_days = 7
    level_window = 12  # the scale: mean of the last hour at 5 min (see the module doc)
    use_trees = True
    # Stage 2's tree model (early stopping, its patience and the seed are set in fit).
    tree_params = dict(max_iter=300, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=100, l2_regularization=1.0)
    max_rows = 200_000  # training rows (origin, step) sampled from all; keeps fit within seconds per week of data

    @classmethod
    def min_fit_length(cls, period, max_horizon):
        return 4 * period + max_horizon

    def _plan(self, n: int) -> None:
        """Which seasonal features the data can support, and the history they need (indices worked out in _features)."""
        p, hmax = self.period, self.max_horizon
        self.days = int(min(self.profile_days, max(1, (n - hmax - 2 * p - 12) // p)))
        self.use_week = n >= 14 * p + 12 + hmax  # at least a week of training origins that can see last week
        first_origin = max(self.days * p + 1, p + 11, 35, 7 * p + 11 if self.use_week else 0)
        self.min_history = first_origin + 1

    def _features(self, y: np.ndarray, t: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(features, level, profile) at origins t for steps h; only y[: t + 1] is read."""
        p, w = self.period, _Windows(y)
        # The last hour's mean, but at least LEVEL_FLOOR of the mean over the days the profile reads
        # (clean.recent_level): a quiet hour between bursts must not turn the bursts of the last days into features of
        # thousands of levels (the ridge extrapolated them to 10-90x the largest value seen; tests/forecast/
        # test_quiet_ports.py).
        level = np.maximum(np.abs(w.mean(t, self.level_window)),
                           LEVEL_FLOOR * np.abs(w.mean(t, self.days * p))) + self.eps
        season = t + h - _seasonal_offsets(h, p)  # same time of day as the target, on the latest day before it
        day_vals = [w.centred(season - d * p, t) for d in range(self.days)]
        profile = np.mean(day_vals, axis=0)
        now_profile = np.mean([w.centred(t - (d + 1) * p, t, 1) for d in range(self.days)], axis=0)
        recent3, recent12 = w.mean(t, 3), w.mean(t, 12)
        cols = [h.astype(float), y[t], y[t - 1], y[t - 2], recent3, recent12, w.mean(t, 36), w.std(t, 12),
                day_vals[0], profile, np.median(day_vals, axis=0), y[season],
                recent3 - now_profile, recent12 - now_profile,
                day_vals[0] * recent12 / (w.mean(t - p, 12) + self.eps)]  # yesterday scaled by how today runs vs it
        if self.use_week:
            wk = t + h - _seasonal_offsets(h, 7 * p)
            cols += [w.centred(wk, t), recent12 - w.mean(t - 7 * p, 12)]
        x = np.stack(cols, axis=-1)
        x[:, 1:] /= level[:, None]
        return x, level, profile

    def fit(self, y, period, max_horizon, plan_length=None):
        self.period, self.max_horizon = period, max_horizon
        self.eps = 1e-6 * (float(np.mean(np.abs(y))) + 1e-12)  # keeps level > 0 on an all-zero stretch
        self._plan(plan_length or len(y))
        t_all, h_all = [], []
        for h in range(1, max_horizon + 1):
            t = np.arange(self.min_history - 1, len(y) - h)
            t_all.append(t)
            h_all.append(np.full(len(t), h))
        t, h = np.concatenate(t_all), np.concatenate(h_all)
        if len(t) > self.max_rows:
            keep = np.random.default_rng(0).choice(len(t), self.max_rows, replace=False)
            t, h = t[keep], h[keep]
        x, level, profile = self._features(y, t, h)
        target = (y[t + h] - profile) / level
        # Stage 1, per step h: a ridge on the scaled features. Trees approximate linear relations (today's value
        # carrying over to the next few steps) badly, so they only learn what the linear stage leaves.
        self.coef = np.zeros((max_horizon, x.shape[1] - 1))
        self.intercept = np.zeros(max_horizon)
        for step in range(1, max_horizon + 1):
            rows = h == step
            lin = RidgeCV(alphas=np.logspace(-4, 2, 7)).fit(x[rows, 1:], target[rows])
            self.coef[step - 1], self.intercept[step - 1] = lin.coef_, lin.intercept_
        linear = self._linear(x, h)
        if not self.use_trees:
            return self
        # Stage 2: one tree model for all steps on what the linear stage got wrong. Early stopping watches the latest
        # 15% of origins: a random split would leak, since neighbouring origins share almost all their inputs.
        features, residual = np.column_stack([x, linear]), target - linear
        late = t >= np.quantile(t, 0.85)
        self.model = HistGradientBoostingRegressor(
            **self.tree_params, early_stopping=True, n_iter_no_change=20, random_state=0,
        ).fit(features[~late], residual[~late], X_val=features[late], y_val=residual[late])
        return self

    def _linear(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        return np.einsum("nf,nf->n", x[:, 1:], self.coef[h - 1]) + self.intercept[h - 1]

    def predict_many(self, y, origins, horizon):
        h = np.tile(np.arange(1, horizon + 1), len(origins))
        t = np.repeat(origins, horizon)
        x, level, profile = self._features(y, t, h)
        linear = self._linear(x, h)
        if not self.use_trees:
            return (profile + level * linear).reshape(len(origins), horizon)
        # One forecast is a few dozen rows, the forecaster's rolling window (two days of origins x 12 steps) ~7,000:
        # starting OpenMP threads for them costs 20-50 ms on a busy 2-core box, one thread ~4 ms for the window.
        # Backtests (many more rows) keep all threads.
        with _one_thread() if len(t) < 20_000 else nullcontext():
            scaled = linear + self.model.predict(np.column_stack([x, linear]))
        return (profile + level * scaled).reshape(len(origins), horizon)


class ProfileRidge(Boosted):
    """Stage 1 of `boosted` alone: per-step ridge on the same scale-free features. Cheap, and often best at short steps."""

    name = "profile_ridge"
    use_trees = False
