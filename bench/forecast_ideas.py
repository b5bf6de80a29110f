"""Scratch (session 13, 2026-12-07): combination ideas tried on the dev origins only and not kept (the tuning protocol
of bench/forecast_rules.py: the held-out last 25% cut off, candidates fitted on the first 75% of the rest, every origin
after that scored). Output: bench/out/forecast_ideas_2026-12-07.txt.

    python bench/forecast_ideas.py [--traces uk wc98]

Each line is MAE at 5 min / 1 h / over steps 1-12, against the rule of the time (top 3 by a flat 6-hour MSE):
- the median of the top k instead of their inverse-MSE mean;
- each step's methods chosen on their MSE averaged over the neighbouring steps too;
- Granger-Ramanathan weights (non-negative least squares on the window, normalised), alone or half-shrunk toward the
  rule's weights;
- inverse-MAE weights (MAE ** -1 or ** -2) over the top 3 or 4;
- the combination's mean relative error over the last origins (12 to 288) subtracted, in full or half;
- `boosted` with an absolute-error loss or a bigger tree model, in the rule's candidates instead of boosted or beside it.

With --aci instead: the bands of the forecaster's current point rule (discounted 12-hour top 3) from the plain rolling
split conformal (the last two days' scaled errors, as Forecaster) against adaptive conformal inference (Gibbs and
Candes, NeurIPS 2021: per step, the miscoverage level moves by gamma * (nominal - missed) as each outcome arrives),
with the level free or kept within a factor 2 of nominal, and each band's interval score (session 14). Output:
bench/out/forecast_aci_2026-12-08.txt (session 13's, without the clipped rows and the score:
forecast_aci_2026-12-07.txt). Not in the forecaster: it needs state carried between forecasts.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.forecast_rules import (H, TRACES, DevRun, combine, pick_top, top_k_inverse,  # noqa: E402
                                  window_mean)
from netgpt.edge_agent.forecast import methods as M  # noqa: E402
from netgpt.edge_agent.forecast.clean import recent_level  # noqa: E402
from netgpt.edge_agent.forecast.data import PERIOD_5MIN as P  # noqa: E402

WINDOW = P // 4  # the rule's 6 hours


def combine_median(fc, actual, k):
    out = np.full(fc.shape[1:], np.nan)
    for h in range(H):
        score = window_mean((fc[:, :, h] - actual[None, :, h]) ** 2, WINDOW, h)
        vals = np.take_along_axis(fc[:, :, h], pick_top(score, k), 0)
        out[:, h] = np.where(np.isfinite(score).any(0), np.nanmedian(vals, 0), np.nan)
    return out


def combine_over_steps(fc, actual, spread, k=3):
    """The top k by the step's window MSE averaged with its neighbours' (each rescaled to the step's mean over
    methods, so the steps weigh alike)."""
    scores = [window_mean((fc[:, :, h] - actual[None, :, h]) ** 2, WINDOW, h) for h in range(H)]
    out = np.full(fc.shape[1:], np.nan)
    with warnings.catch_warnings():  # nanmean of an all-NaN column (the first origins, a step past max_step)
        warnings.simplefilter("ignore", RuntimeWarning)
        for h in range(H):
            own = np.nanmean(scores[h], 0, keepdims=True)
            parts = [scores[g] if g == h else scores[g] / np.nanmean(scores[g], 0, keepdims=True) * own
                     for g in range(max(0, h - spread), min(H, h + spread + 1))]
            score = np.where(np.isfinite(scores[h]), np.mean(parts, 0), np.nan)
            out[:, h] = top_k_inverse(fc[:, :, h], score, k)
    return out


def combine_nnls(fc, actual, window, shrink, scored, base):
    """base: the rule's combination, which the weights are shrunk toward."""
    out = base.copy()
    for h in range(H):
        able = np.isfinite(fc[:, :, h]).all(1)
        F = fc[able, :, h]
        for i in scored:
            hi = i - (h + 1)
            lo = max(0, hi - window + 1)
            if hi - lo + 1 < window // 2:
                continue
            a = actual[lo:hi + 1, h]
            sc = np.abs(a).mean() + 1e-12
            w = nnls(F[:, lo:hi + 1].T / sc, a / sc)[0]
            if w.sum() > 0:
                out[i, h] = (1 - shrink) * (w / w.sum() @ F[:, i]) + shrink * base[i, h]
    return out


def bias_corrected(base, actual, scale, window, share):
    out = base.copy()
    rel = (actual - base) / scale[:, None]
    for h in range(H):
        bias = window_mean(np.where(np.isfinite(rel[:, h]), rel[:, h], 0.0)[None], window, h)[0]
        out[:, h] = base[:, h] + share * np.nan_to_num(bias) * scale
    return out


def boosted_variant(kind: str) -> type[M.Boosted]:
    change = {"absolute loss": {"loss": "absolute_error"},
              "bigger trees": {"max_leaf_nodes": 31, "min_samples_leaf": 50, "max_iter": 600}}[kind]
    params = {**M.Boosted.tree_params, **change}
    return type("Variant", (M.Boosted,), {"name": "boosted " + kind, "tree_params": params})


def run(key: str) -> None:
    dev = DevRun.of(key)
    y, split, origins, actual, names, fc, scored = (
        dev.y, dev.split, dev.origins, dev.actual, dev.names, dev.forecasts, dev.scored)
    print(f"\n{TRACES[key][1]}, training part only: {len(scored)} origins scored; MAE")
    print(f"{'idea':<48}{'5 min':>10}{'1 h':>10}{'steps 1-12':>12}")

    def show(label, v):
        e = dev.mae(v)
        print(f"{label:<48}{e[0]:>10.1f}{e[11]:>10.1f}{e.mean():>12.1f}", flush=True)

    base = combine(fc, actual, WINDOW, k=3)
    show("the rule: top 3, flat 6-hour MSE", base)
    for k in (3, 4):
        show(f"median of the top {k}", combine_median(fc, actual, k))
    for spread in (1, 2):
        show(f"top 3 by the MSE over steps h-{spread}..h+{spread}", combine_over_steps(fc, actual, spread))
    for window in (WINDOW, P):
        for shrink in (0.0, 0.5):
            show(f"NNLS weights, {window * 5 / 60:g} h, shrink {shrink}",
                 combine_nnls(fc, actual, window, shrink, scored, base))
    for k in (3, 4):
        for gamma in (1, 2):
            show(f"top {k}, MAE^-{gamma} weights", combine(fc, actual, WINDOW, k=k, absolute=True, gamma=gamma))
    scale = recent_level(y, origins, floor_window=7 * P)
    for window in (12, 36, 72, 288):
        for share in (0.5, 1.0):
            show(f"bias removed, last {window} origins, x{share}", bias_corrected(base, actual, scale, window, share))
    b = names.index("boosted")
    for kind in ("absolute loss", "bigger trees"):
        v = boosted_variant(kind)().fit(y[:split], P, H).predict_many(y, origins, H)
        show(f"boosted, {kind}, alone", v)
        instead = fc.copy()
        instead[b] = v
        show("the rule with it instead of boosted", combine(instead, actual, WINDOW, k=3))
        show("the rule with it beside boosted", combine(np.concatenate([fc, v[None]]), actual, WINDOW, k=3))


def aci(key: str) -> None:
    """Coverage, width and interval score of the 80% and 95% bands, split conformal (gamma 0) against ACI, with its
    level free or kept within [nominal / 2, 2 x nominal] (`clip`), on the dev origins."""
    dev = DevRun.of(key)
    f = dev.forecaster
    point = combine(dev.forecasts, dev.actual, f.select_window, k=f.select_top, half_life=f.select_half_life)
    scale = recent_level(dev.y, dev.origins, floor_window=7 * P)
    err = (dev.actual - point) / scale[:, None]
    start = dev.scored[0] - 3 * P  # ACI runs for 3 days before the first scored origin
    persistence = np.abs(dev.y[dev.origins][:, None] - dev.actual)[dev.scored].mean(0)
    print(f"\n{TRACES[key][1]}, training part only: coverage % of the 80% | 95% band at 5 min, 1 h, steps 1-12 "
          "(lowest-highest step); mean width at 5 min, 1 h; interval score at 5 min, 1 h, steps 1-12 (both in "
          "persistence's MAE of the step; lower is better)")
    for gamma, clip in ((0.0, None), (0.002, None), (0.005, None), (0.01, None), (0.02, None),
                        (0.002, 2.0), (0.005, 2.0), (0.01, 2.0), (0.02, 2.0)):
        line = f"  gamma {gamma:<6}{' clip x2' if clip else '        '}"
        for nominal in (0.2, 0.05):
            missed, width, score = aci_bands(point, scale, err, dev.actual, start, nominal, gamma, clip)
            cov = 100 * (1 - missed[dev.scored].mean(0))
            w = width[dev.scored].mean(0) / persistence
            sc = score[dev.scored].mean(0) / persistence
            line += (f" | {cov[0]:5.1f} {cov[11]:5.1f} {cov.mean():5.1f} ({cov.min():.1f}-{cov.max():.1f})"
                     f" w {w[0]:.2f} {w[11]:.2f} IS {sc[0]:.2f} {sc[11]:.2f} {sc.mean():.2f}")
        print(line, flush=True)


def aci_bands(point, scale, err, actual, start, nominal, gamma, clip):
    """(missed, width, interval score) per origin from `start` on and step, of the central 1 - nominal band whose
    level ACI moves by gamma * (nominal - missed) as each outcome arrives (gamma 0: plain split conformal on the
    last two days' scaled errors `err`); with `clip`, the level stays within [nominal / clip, nominal * clip]."""
    level = np.full(H, nominal)
    missed, width, score = (np.full(actual.shape, np.nan) for _ in range(3))
    for i in range(start, len(actual)):
        for h in range(H):
            j = i - (h + 1)  # the newest origin whose step h+1 is observed at origin i
            if j >= start:
                level[h] += gamma * (nominal - missed[j, h])
                if clip:
                    level[h] = min(max(level[h], nominal / clip), nominal * clip)
            recent = err[max(0, j - 2 * P + 1): j + 1, h]
            if level[h] <= 0:  # ACI's infinite band, bounded: 1.5x the widest error of the window
                low, high = 1.5 * recent.min(), 1.5 * recent.max()
            else:
                low, high = np.quantile(recent, [min(level[h] / 2, 0.5), max(1 - level[h] / 2, 0.5)])
            lower, upper = point[i, h] + scale[i] * min(low, 0), point[i, h] + scale[i] * max(high, 0)
            y = actual[i, h]
            missed[i, h] = float(not lower <= y <= upper)
            width[i, h] = upper - lower
            # Gneiting and Raftery's interval score of the central (1 - nominal) band
            score[i, h] = width[i, h] + 2 / nominal * (max(lower - y, 0) + max(y - upper, 0))
    return missed, width, score


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", nargs="+", choices=sorted(TRACES), default=sorted(TRACES, reverse=True))
    ap.add_argument("--aci", action="store_true", help="the bands' ideas instead of the point combination's")
    args = ap.parse_args()
    for key in args.traces:
        (aci if args.aci else run)(key)


if __name__ == "__main__":
    main()
