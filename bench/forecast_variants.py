"""Scratch (2026-12-07): the forecaster itself on the dev origins (training parts only) with variants of its fields:
    python bench/forecast_variants.py STRIDE '{"label": {"regime_clear": 12}}' uk wc98   (env: FC_DT=1 keeps damped_trend,
    DT_GRID=beta,phi, DT_MAX, DT_CAP set it). Outputs: bench/out/forecast_dev_variants_2026-12-07.txt."""
import sys, time, json, dataclasses
import numpy as np
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from bench.forecast import load_trace
from netgpt.edge_agent.forecast.data import PERIOD_5MIN as P
from netgpt.edge_agent.forecast.forecaster import fit_forecaster

H = 12
stride = int(sys.argv[1])
variants = json.loads(sys.argv[2])  # {label: {field: value}}
for key in sys.argv[3:]:
    y = load_trace(key)
    y = y[: int(0.75 * len(y))]
    split = int(0.75 * len(y))
    import os
    from netgpt.edge_agent.forecast.backtesting import DEFAULT_METHODS
    from netgpt.edge_agent.forecast.methods import DampedTrend
    if os.environ.get("DT_GRID"):
        DampedTrend.beta, DampedTrend.phi = map(float, os.environ["DT_GRID"].split(","))
    DampedTrend.max_step = int(os.environ.get("DT_MAX", "3"))
    DampedTrend.max_slope = float(os.environ.get("DT_CAP", "0.1"))
    ms = tuple(m for m in DEFAULT_METHODS if m != "damped_trend" or os.environ.get("FC_DT") == "1")
    f0 = fit_forecaster(y[:split], P, max_horizon=H, methods=ms)
    print(key, "weights at fit:", list(f0.methods), f0.weights[[0, 2, 11]].round(2).tolist())
    origins = np.arange(split - 1, len(y) - H, stride)
    actual = y[origins[:, None] + np.arange(1, H + 1)[None, :]]
    pers = np.abs(y[origins][:, None] - actual).mean(0)
    print(f"\n{key}: {len(origins)} origins every {stride}; persistence {pers[0]:.1f} / {pers[11]:.1f} / {pers.mean():.1f}")
    print(f"{'variant':<28}{'5min':>9}{'1h':>9}{'1-12':>9}  cov80 5m/1h/all   cov95 5m/1h/all  IS80 5m/1h  regimes  ms")
    for label, kw in variants.items():
        f = dataclasses.replace(f0, **kw)
        lat, preds = [], []
        for o in origins:
            t0 = time.perf_counter(); preds.append(f.forecast(y[: o + 1], H)); lat.append(time.perf_counter() - t0)
        v = np.stack([p.values for p in preds]); e = np.abs(v - actual).mean(0)
        out = []
        for lo, hi in ((0.1, 0.9), (0.025, 0.975)):
            L = np.stack([p.quantiles[lo] for p in preds]); U = np.stack([p.quantiles[hi] for p in preds])
            ins = (L <= actual) & (actual <= U)
            out.append((100 * ins[:, 0].mean(), 100 * ins[:, 11].mean(), 100 * ins.mean()))
            if lo == 0.1:  # interval score (Winkler), alpha 0.2, in units of persistence's MAE at that step
                a = 0.2
                score = (U - L) + (2 / a) * np.maximum(L - actual, 0) + (2 / a) * np.maximum(actual - U, 0)
                is80 = score.mean(0) / pers
        reg = sum(p.regime is not None for p in preds)
        print(f"{label:<28}{e[0]:>9.1f}{e[11]:>9.1f}{e.mean():>9.1f}  {out[0][0]:5.1f} {out[0][1]:5.1f} {out[0][2]:5.1f}"
              f"  {out[1][0]:5.1f} {out[1][1]:5.1f} {out[1][2]:5.1f}  {is80[0]:5.2f} {is80[11]:5.2f}  {reg:4d}  "
              f"{1e3*np.median(lat):.0f}/{1e3*max(lat):.0f}", flush=True)
