"""Replays the forecaster's predict-time rules on the bench traces' training parts only (the tuning protocol of
bench/forecast.py --dev: the held-out last 25% is cut off, the candidates are fitted on the first 75% of the rest and
scored on every origin after that).

    python bench/forecast.py --dev ...            # the forecaster itself, on the dev origins
    python bench/forecast_rules.py [--traces uk wc98]

The candidates are fitted once (fit_forecaster's methods) and forecast from every origin; the rules are then replayed
on those forecasts, vectorised, so many variants cost seconds: per step, the top k methods by squared (or absolute)
error over the last `window` origins whose step is observed, weighted by the inverse of it (the forecaster's rule is
k Forecaster.select_top, MSE over the last Forecaster.select_window origins discounted by a half-life of
Forecaster.select_half_life; a flat 6-hour window until session 13), and the best single method. Then the coverage of
the 80% and 95% bands when the quantiles of each step come from the rolling errors of the last `calibration` origins,
mixed with fit's backtest errors (`recent weight` of the mass on the rolling ones). The regime re-weighting is not
replayed (it is rare at a x2 threshold), so the forecaster's own numbers come from bench/forecast.py --dev.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.forecast import TRACES, load_trace, mae_on  # noqa: E402
from bench.stats import mean_ratio_ci  # noqa: E402
from netgpt.edge_agent.forecast.clean import clean_series, recent_level  # noqa: E402
from netgpt.edge_agent.forecast.data import PERIOD_5MIN as P  # noqa: E402
from netgpt.edge_agent.forecast.forecaster import (Forecaster, fit_forecaster, selection_min,  # noqa: E402
                                                   weighted_quantiles)

H = 12
LEVELS = np.array([0.025, 0.1, 0.9, 0.975])


def window_mean(loss: np.ndarray, window: int, h: int) -> np.ndarray:
    """loss (methods, origins) of step h+1 -> mean over the last `window` origins whose step h+1 is observed at each
    origin (NaN while fewer than half a window are)."""
    c = np.concatenate([np.zeros((loss.shape[0], 1)), np.cumsum(loss, 1)], 1)
    hi = np.arange(loss.shape[1]) - (h + 1)
    lo = np.maximum(0, hi - window + 1)
    n = hi - lo + 1
    return np.where(n >= max(window // 2, 1), (c[:, np.maximum(hi + 1, 0)] - c[:, lo]) / np.maximum(n, 1), np.nan)


def discounted_mean(loss: np.ndarray, half_life: float, h: int, min_rows: int, window: int) -> np.ndarray:
    """loss (methods, origins) of step h+1 -> its mean over the last `window` origins whose step h+1 is observed at
    each origin, weighted by 0.5 ** (age / half_life), the age in origins from the newest of them (NaN while fewer
    than min_rows are): Forecaster._combined's error."""
    lam = 0.5 ** (1.0 / half_life)
    num = lfilter([1.0], [1.0, -lam], loss, axis=1)  # sum of lam ** age * loss over origins <= i
    den = lfilter([1.0], [1.0, -lam], np.ones(loss.shape[1]))
    if window < loss.shape[1]:  # minus what lies `window` or more origins back
        num[:, window:] -= lam ** window * num[:, :-window]
        den[window:] -= lam ** window * den[:-window]
    lag = h + 1  # at origin i, the newest observed error of step h+1 is origin i - (h+1)
    out = np.full(loss.shape, np.nan)
    out[:, lag:] = num[:, :-lag] / den[None, :-lag]
    out[:, : lag + min_rows - 1] = np.nan
    return out


def combine(forecasts: np.ndarray, actual: np.ndarray, window: int, k: int = 2, absolute: bool = False,
            gamma: float = 1.0, long_window: int = 0, blend: float = 0.0, half_life: float | None = None
            ) -> np.ndarray:
    """forecasts (methods, origins, H) -> the rolling top-k inverse-error combination (origins, H). Variants: weights
    (1 / error) ** gamma (0: equal weights among the top k), the error a `blend` mix of the window's and a
    `long_window`'s, and (half_life given) the window's errors discounted by that half-life (then it needs
    selection_min(window, half_life) observed origins, as the forecaster)."""
    out = np.full(forecasts.shape[1:], np.nan)
    for h in range(H):
        err = forecasts[:, :, h] - actual[None, :, h]
        loss = np.abs(err) if absolute else err ** 2
        if half_life is None:
            score = window_mean(loss, window, h)
        else:
            loss = np.where(np.isfinite(loss), loss, np.inf)  # a step past a method's max_step: never chosen
            score = discounted_mean(loss, half_life, h, selection_min(window, half_life), window)
            score = np.where(np.isinf(score), np.nan, score)
        if blend:
            longer = window_mean(loss, long_window, h)
            score = np.where(np.isfinite(longer), (1 - blend) * score + blend * longer, score)
        out[:, h] = top_k_inverse(forecasts[:, :, h], score, k, gamma)
    return out


def pick_top(score: np.ndarray, k: int) -> np.ndarray:
    """Per origin (column), the indices of the k methods with the lowest score (NaN: not a candidate, last)."""
    return np.argsort(np.where(np.isfinite(score), score, np.inf), 0)[:k]


def top_k_inverse(step_forecasts: np.ndarray, score: np.ndarray, k: int, gamma: float = 1.0) -> np.ndarray:
    """Per origin, the k methods with the lowest score (NaN: not a candidate) combined with weights score ** -gamma;
    step_forecasts and score are (methods, origins). NaN where no method has a score."""
    top = pick_top(score, k)
    best = np.take_along_axis(score, top, 0)
    inv = np.where(np.isfinite(best), (1.0 / (best + 1e-300)) ** gamma, 0.0)
    weights = np.zeros_like(score)
    np.put_along_axis(weights, top, inv / np.maximum(inv.sum(0, keepdims=True), 1e-300), 0)
    step = np.where(np.isfinite(step_forecasts), step_forecasts, 0.0)  # NaN: a step past a max_step
    return np.where(np.isfinite(score).any(0), (weights * step).sum(0), np.nan)


def coverage(point, actual, scale, pool, scored, recent_weight, calibration, every=4):
    """Per-step coverage (%) of the 80% and 95% bands over every `every`-th scored origin."""
    err = (actual - point) / scale[:, None]
    rows = scored[::every]
    q = np.empty((len(rows), H, len(LEVELS)))
    for r, i in enumerate(rows):
        for h in range(H):
            end = i - (h + 1)
            recent = err[max(0, end - calibration + 1): end + 1, h]
            q[r, h] = weighted_quantiles(pool[:, h], recent[np.isfinite(recent)], recent_weight, LEVELS)
    band = point[rows][:, :, None] + scale[rows][:, None, None] * q
    a = actual[rows]
    return (100 * ((band[..., 1] <= a) & (a <= band[..., 2])).mean(0),
            100 * ((band[..., 0] <= a) & (a <= band[..., 3])).mean(0))


@dataclass
class DevRun:
    """The candidates of fit_forecaster, fitted on the first 75% of a trace's training part, and their forecasts from
    every origin of the rest (and from a week before it, which fills the rolling windows)."""
    y: np.ndarray  # the training part, cleaned; the held-out part is never read
    split: int  # steps fitted on
    forecaster: Forecaster
    origins: np.ndarray
    actual: np.ndarray  # (origins, H)
    names: list[str]
    forecasts: np.ndarray  # (methods, origins, H); NaN at a short-range method's steps past its max_step
    scored: np.ndarray  # indices into origins of those scored (after the fitted part)

    @classmethod
    def of(cls, key: str) -> "DevRun":
        y = clean_series(load_trace(key), P)[0]
        y = y[: int(0.75 * len(y))]
        split = int(0.75 * len(y))
        f = fit_forecaster(y[:split], P, max_horizon=H)
        origins = np.arange(split - 1 - 7 * P, len(y) - H)
        names = list(f.methods)
        forecasts = np.stack([f.methods[m].predict_many(y, origins, H) for m in names])
        for j, m in enumerate(names):  # a short-range method (damped_trend) is no candidate past its max_step
            forecasts[j, :, [h for h in range(H) if not f.methods[m].covers(h)]] = np.nan
        return cls(y, split, f, origins, y[origins[:, None] + np.arange(1, H + 1)[None, :]], names, forecasts,
                   np.flatnonzero(origins >= split - 1))

    def mae(self, v: np.ndarray) -> np.ndarray:
        """MAE per step of forecasts v (origins, H) over the scored origins."""
        return mae_on(v[self.scored], self.actual[self.scored])


def replay(key: str) -> None:
    run = DevRun.of(key)
    y, split, f, origins, actual, names, forecasts, scored = (
        run.y, run.split, run.forecaster, run.origins, run.actual, run.names, run.forecasts, run.scored)
    print(f"\n{TRACES[key][1]}, training part only: fitted on {split} steps, {len(scored)} origins scored; MAE")
    print(f"{'rule':<44}{'5 min':>10}{'1 h':>10}{'steps 1-12':>12}")

    def show(label, v):
        e = run.mae(v)
        print(f"{label:<44}{e[0]:>10.1f}{e[11]:>10.1f}{e.mean():>12.1f}")

    for j, m in enumerate(names):
        show(m, forecasts[j])
    show("best single, 1 day", combine(forecasts, actual, P, k=1))
    for window in (P // 8, P // 6, P // 4, P // 3, P // 2, P, 2 * P):
        show(f"top 2, MSE, {window * 5 / 60:g} h", combine(forecasts, actual, window))
    show(f"top 2, MAE, {P // 4 * 5 / 60:g} h", combine(forecasts, actual, P // 4, absolute=True))
    for k in (3, 4, len(names)):
        for window in (P // 6, P // 4, P // 3):
            show(f"top {k}, MSE, {window * 5 / 60:g} h", combine(forecasts, actual, window, k=k))
    for k in (f.select_top, len(names)):  # session 12: how much the inverse-MSE weighting matters
        for gamma in (0.0, 0.5, 2.0):
            show(f"top {k}, MSE^-{gamma:g} weights, 6 h", combine(forecasts, actual, P // 4, k=k, gamma=gamma))
    for blend in (0.25, 0.5):
        for days in (1, 7):
            show(f"top 3, 6 h MSE {1 - blend:g} + {days} d MSE {blend:g}",
                 combine(forecasts, actual, P // 4, k=3, long_window=days * P, blend=blend))
    for window in (P // 4, P // 2, 2 * P):  # session 13: the window's errors discounted
        for half in (P // 24, P // 12, P // 8, P // 4):
            show(f"top 3, MSE, {window * 5 / 60:g} h, half-life {half * 5 / 60:g} h",
                 combine(forecasts, actual, window, k=3, half_life=half))
    show("top 4, MSE, 12 h, half-life 2 h", combine(forecasts, actual, P // 2, k=4, half_life=P // 12))
    point = combine(forecasts, actual, f.select_window, k=f.select_top, half_life=f.select_half_life)
    show("the forecaster's rule", point)
    flat = combine(forecasts, actual, P // 4, k=3)  # the rule until session 13: top 3 by a flat 6-hour MSE
    days = len(scored) // P  # whole days of scored origins, resampled as blocks (neighbouring origins share errors)
    err = np.abs(np.stack([point, flat])[:, scored[: days * P]] - actual[scored[: days * P]])
    by_day = err.reshape(2, days, P, H).mean(2)  # (rule, day, step)
    for label, cols in (("steps 1-12", by_day.mean(2)), ("1 h", by_day[:, :, 11])):
        r, lo, hi = mean_ratio_ci(cols.T)
        print(f"the forecaster's rule / the flat 6-hour top 3, {label}: {r:.3f} [{lo:.3f}, {hi:.3f}] "
              f"(95% interval, {days} days resampled)")
    scale = recent_level(y, origins, floor_window=7 * P)  # as the forecaster scales its errors
    print(f"coverage with the forecaster's top-{f.select_top} combination (half-life "
          f"{f.select_half_life * 5 / 60:g} h; every 4th origin): 80% / 95% band, "
          "5 min, 1 h, lowest and highest step")
    for recent_weight in (0.5, 0.8, 1.0):
        for calibration in (P, 2 * P):
            c80, c95 = coverage(point, actual, scale, f.residuals, scored, recent_weight, calibration)
            print(f"  recent weight {recent_weight}, {calibration // P} day(s): "
                  + " | ".join(f"{c[0]:.1f} {c[11]:.1f} [{c.min():.1f}, {c.max():.1f}]" for c in (c80, c95)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", nargs="+", choices=sorted(TRACES), default=sorted(TRACES, reverse=True))
    for key in ap.parse_args().traces:
        replay(key)


if __name__ == "__main__":
    main()
