"""Forecasting benchmark on GENERATED 5-minute link traces (netgpt.edge_agent.forecast.data; no real trace ships here).

    python bench/forecast.py [--weeks 8] [--test-days 14] [--seeds 0 1 2]
    python bench/forecast.py --lm [--lm-origins 40] [--lm-period 48]   # edge_lm only (needs the model + adapter)

For each seed: a rolling-origin backtest (every origin of the last `test-days`, fitted on everything before them, no
look-ahead) prints MAE per method at steps 1, 6, 12 (1 hour) and 36, and how far the selected forecaster is below the
ridge-on-lags baseline (lags 0..11, same time yesterday and last week) at 1 hour. Then the fit time of
fit_forecaster on the training part and predict latency (median and p99 of single calls) for horizons 1, 12 and 36.

--lm (opt-in, slow): the edge LM with its `forecast` adapter (netgpt.edge_agent.forecast.lm) against seasonal_naive and
ridge_lags on a short generated series (3 weeks at `--lm-period` steps per day, the last 2 days as test), on
`--lm-origins` evenly spaced origins only: MAE at steps 1, 6, 12 and the LM's predict latency for horizons 1, 6, 12.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from netgpt.edge_agent.forecast.data import PERIOD_5MIN, synthetic_link_trace  # noqa: E402
from netgpt.edge_agent.forecast.forecaster import DEFAULT_METHODS, backtest, fit_forecaster  # noqa: E402
from netgpt.edge_agent.forecast.lm import EdgeLMForecast  # noqa: E402

STEPS = (1, 6, 12, 36)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weeks", type=int, default=8)
    ap.add_argument("--test-days", type=int, default=14)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--horizon", type=int, default=36)
    ap.add_argument("--lm", action="store_true", help="benchmark edge_lm instead (slow; needs the cached model)")
    ap.add_argument("--lm-origins", type=int, default=40)
    ap.add_argument("--lm-period", type=int, default=48)
    args = ap.parse_args()
    if args.lm:
        return bench_lm(args)
    period, horizon = PERIOD_5MIN, args.horizon
    print(f"generated 5-min traces: {args.weeks} weeks, last {args.test_days} days as test, horizon {horizon}, "
          f"{os.cpu_count()} CPUs")
    gains = []
    for seed in args.seeds:
        y = synthetic_link_trace(n_days=7 * args.weeks, seed=seed)
        t0 = time.perf_counter()
        result = backtest(y, period, horizon, methods=DEFAULT_METHODS, test_len=args.test_days * period,
                          with_forecaster=True)
        elapsed = time.perf_counter() - t0
        mae = result.mae()
        print(f"\nseed {seed}: {len(result.origins)} origins, backtest {elapsed:.0f} s. MAE in Mbit/s")
        print(f"{'method':<16}" + "".join(f"{'h=' + str(h):>10}" for h in STEPS if h <= horizon))
        for name, per_step in mae.items():
            print(f"{name:<16}" + "".join(f"{per_step[h - 1] / 1e6:>10.2f}" for h in STEPS if h <= horizon))
        if 12 <= horizon:
            gain = 1 - mae["forecaster"][11] / mae["ridge_lags"][11]
            gains.append(gain)
            print(f"1-hour MAE vs ridge_lags: {100 * gain:+.1f}% lower")

    y = synthetic_link_trace(n_days=7 * args.weeks, seed=args.seeds[0])
    train = y[: len(y) - args.test_days * period]
    t0 = time.perf_counter()
    f = fit_forecaster(train, period, max_horizon=horizon)
    fit_s = time.perf_counter() - t0
    print(f"\nfit_forecaster on {len(train)} steps: {fit_s:.1f} s; uses {f.name}")
    for h in (1, 12, 36):
        if h > horizon:
            continue
        times = []
        for i in range(200):
            history = y[: len(train) + i]
            t0 = time.perf_counter()
            f.predict(history, h)
            times.append(time.perf_counter() - t0)
        print(f"predict h={h:<3} median {1e3 * np.median(times):.2f} ms, p99 {1e3 * np.quantile(times, 0.99):.2f} ms")
    if gains:
        print(f"\n1-hour MAE below ridge_lags, per seed: {', '.join(f'{100 * g:.1f}%' for g in gains)}")


def bench_lm(args) -> None:
    reason = EdgeLMForecast.unavailable()
    if reason:
        raise SystemExit(f"edge_lm unavailable: {reason}")
    period, horizon, methods = args.lm_period, 12, ("seasonal_naive", "ridge_lags", "edge_lm")
    print(f"edge_lm vs baselines: generated trace, period {period}, 21 days, last 2 days as test, horizon {horizon}, "
          f"{args.lm_origins} origins")
    for seed in args.seeds:
        y = synthetic_link_trace(n_days=21, period=period, seed=seed)
        test_len = 2 * period
        stride = int(np.ceil((test_len - horizon + 1) / args.lm_origins))
        t0 = time.perf_counter()
        result = backtest(y, period, horizon, methods=methods, test_len=test_len, stride=stride)
        elapsed = time.perf_counter() - t0
        mae = result.mae()
        print(f"\nseed {seed}: {len(result.origins)} origins (every {stride}-th), backtest {elapsed:.0f} s. MAE in Mbit/s")
        print(f"{'method':<16}" + "".join(f"{'h=' + str(h):>10}" for h in (1, 6, 12)))
        for name, per_step in mae.items():
            print(f"{name:<16}" + "".join(f"{per_step[h - 1] / 1e6:>10.2f}" for h in (1, 6, 12)))
    m = EdgeLMForecast().fit(y, period, horizon)
    for h in (1, 6, 12):
        times = []
        for i in range(5):
            t0 = time.perf_counter()
            m.predict(y[: len(y) - 50 + i], h)
            times.append(time.perf_counter() - t0)
        print(f"edge_lm predict h={h:<3} median {1e3 * np.median(times):.0f} ms (5 calls)")
    print(f"steps filled by the seasonal naive fallback in the latency runs: {m.unparsed}")


if __name__ == "__main__":
    main()
