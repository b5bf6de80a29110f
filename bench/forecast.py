"""Forecasting benchmark on the shared REAL traces (bench/data/, provenance in bench/data/README.md).

    python bench/forecast.py [--traces uk wc98] [--stride 101] [--dev] [--slow-peers] [--lm-origins 40]
                             [--rows forecaster ours peers edge_lm gpt4ts] [--gpt4ts-seconds 420] [--gpt4ts-layers 4]

Per trace (5-minute steps, period 288): every method is fitted on the first 75% (`--train`), then forecasts from
origins every `--stride` steps over the rest, 12 steps (1 hour) ahead, the same origins for every row; MAE at 5 min and
1 h. Rows: the default forecaster (fit_forecaster on the first 75%; at each origin it re-selects on the last day of the
history it is given, see netgpt.edge_agent.forecast.forecaster), our methods one by one (persistence, seasonal naive,
seasonal_drift, the ridge-on-lags baseline, profile_ridge, boosted), statsforecast peers refitted at each origin on
the trailing 3 weeks (MSTL daily, AutoETS; with --slow-peers also MSTL daily+weekly and AutoTheta, ~30 s per origin
each here), the LM forecaster (edge_lm, skipped with the reason when its model or adapter is not built) on at most
`--lm-origins` of the origins, and its no-LM ablation: the same window scaling, prompt encoding, rounding and parsing,
with the LM's answer replaced by the window's last value. GPT4TS (netgpt.edge_agent.forecast.gpt4ts: patches into the
first `--gpt4ts-layers` layers of SmolLM2-135M with LoRA, a linear head) trained on the same first 75% for at most
`--gpt4ts-seconds`, and its no-LM ablation `patch_linear` (the same model without the LM layers) trained for the same
number of steps and, in a second row, for the same wall-clock budget (at most `--ablation-max-steps` steps), all on
every origin; their training steps, steps/s, and predict latency per series (one origin) and
for the last day's 300 origins (what the ensemble's rolling re-selection would ask of it at each forecast).
`--rows` runs only some groups of rows, on the same origins (the ratio and coverage lines need `forecaster`).
Then: the default forecaster's ratio to the best other row per horizon, empirical coverage of its 80% and 95%
intervals over all 12 steps and per step (5 min, 1 h, the lowest and highest step), and predict latency (forecast(),
all quantiles and the regime check) per series. The ratios and coverages carry 95% intervals from 2000 bootstrap
resamples of the origins (bench/stats.py, seed 0; a ratio's two rows resampled together). The best other row is the
best of about ten after the fact, so on few origins its MAE is biased low: read a ratio with its interval.

`--dev` is the tuning protocol: the held-out part (the last 1 - `--train` of each trace) is cut off first, and the
bench runs on what is left, fitted on its first `--train` and scored on the rest. Choices are made this way; the
held-out bench (without --dev) is run once at the end.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from netgpt.edge_agent.forecast import lm as flm  # noqa: E402
from netgpt.edge_agent.forecast.backtesting import METHODS  # noqa: E402
from netgpt.edge_agent.forecast.data import PERIOD_5MIN, read_csv  # noqa: E402
from netgpt.edge_agent.forecast.forecaster import fit_forecaster  # noqa: E402
from netgpt.edge_agent.forecast.gpt4ts import GPT4TS, PatchLinear, trainable_parameters  # noqa: E402
from netgpt.models import tasks  # noqa: E402
from bench.stats import boot_ci, mean_ratio_ci  # noqa: E402

TRACES = {"uk": ("isp_uk_academic_5min.csv", "UK backbone (JANET)"),
          "wc98": ("wc98_requests_5min.csv", "WC98 requests")}
OURS = ("persistence", "seasonal_naive", "seasonal_drift", "ridge_lags", "profile_ridge", "boosted")
H, STEPS = 12, {"5 min": 1, "1 h": 12}
ROW_GROUPS = ("forecaster", "ours", "peers", "edge_lm", "gpt4ts")
TRAILING = 3 * 7 * PERIOD_5MIN  # statsforecast peers see the last 3 weeks at each origin


def load_trace(key: str) -> np.ndarray:
    values, _ = read_csv(ROOT / "bench" / "data" / TRACES[key][0])
    return values


def statsforecast_peers(slow: bool) -> dict:
    from statsforecast.models import MSTL, AutoETS, AutoTheta
    peers = {"MSTL daily": lambda: MSTL(season_length=PERIOD_5MIN), "AutoETS": lambda: AutoETS(season_length=1)}
    if slow:
        peers["MSTL daily+weekly"] = lambda: MSTL(season_length=[PERIOD_5MIN, 7 * PERIOD_5MIN])
        peers["AutoTheta"] = lambda: AutoTheta(season_length=PERIOD_5MIN)
    return peers


class LastValueServer:
    """Stands in for the LM in the ablation: answers the prompt's last value, through the task's exact encoding."""

    def complete(self, prompt, adapter=None, max_tokens=64, **kw):
        last = tasks.parse_series(prompt.split(":", 1)[1])[-1]
        return _Text(" " + tasks.serialise([last] * tasks.HORIZON))


@dataclass
class _Text:
    text: str


def lm_rows(y, train, origins, max_origins) -> tuple[dict, str]:
    """({row: (forecasts, indices of the origins used)}, a note) for edge_lm and its no-LM ablation."""
    pick = np.unique(np.linspace(0, len(origins) - 1, min(max_origins, len(origins))).astype(int))
    rows = {}
    ablation = flm.ServerCache()
    ablation.put(Path("/nonexistent-ablation"), LastValueServer())
    m = flm.EdgeLMForecast(cache_dir=Path("/nonexistent-ablation"), servers=ablation).fit(train, PERIOD_5MIN, H)
    rows["edge_lm (no LM: last value)"] = (m.predict_many(y, origins[pick], H), pick)
    reason = flm.EdgeLMForecast.unavailable()
    if reason:
        return rows, f"edge_lm skipped: {reason}"
    m = flm.EdgeLMForecast().fit(train, PERIOD_5MIN, H)
    t0 = time.perf_counter()
    rows["edge_lm"] = (m.predict_many(y, origins[pick], H), pick)
    return rows, (f"edge_lm on {len(pick)} of the origins (its own and the ablation's MAE are on those origins only): "
                  f"{time.perf_counter() - t0:.0f} s, {m.unparsed} of {len(pick) * H} steps not parsed from the LM's "
                  f"answer (seasonal naive there)")


def gpt4ts_rows(y, train, origins, args) -> tuple[dict, list[str]]:
    """({row: forecasts on every origin}, notes) for gpt4ts and its no-LM ablation trained for as many steps."""
    import torch

    torch.set_num_threads(2)
    rows, notes = {}, []
    reason = GPT4TS.unavailable()
    models = []
    if reason:
        notes.append(f"gpt4ts skipped: {reason}")
        steps = None
    else:
        lm = GPT4TS(n_layers=args.gpt4ts_layers, train_seconds=args.gpt4ts_seconds).fit(train, PERIOD_5MIN, H)
        rows[f"gpt4ts (SmolLM2 {args.gpt4ts_layers} layers + LoRA)"] = lm.predict_many(y, origins, H)
        models.append(lm)
        steps = lm.steps_done
    ab = PatchLinear(max_steps=steps or GPT4TS.config.max_steps, train_seconds=args.gpt4ts_seconds)
    ab = ab.fit(train, PERIOD_5MIN, H)
    rows["patch_linear (no LM), same steps"] = ab.predict_many(y, origins, H)
    models.append(ab)
    # The same model given the same wall-clock budget instead: it is ~30x cheaper per step, so it gets many more.
    long = PatchLinear(max_steps=args.ablation_max_steps, train_seconds=args.gpt4ts_seconds).fit(train, PERIOD_5MIN, H)
    rows["patch_linear (no LM), same time"] = long.predict_many(y, origins, H)
    models.append(long)
    for m in models:
        single = []
        for o in origins:
            t0 = time.perf_counter()
            m.predict(y[: o + 1], H)
            single.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        m.predict_many(y, np.arange(origins[-1] - 299, origins[-1] + 1), H)
        day = time.perf_counter() - t0
        notes.append(f"{m.name}: {m.steps_done} steps in {m.train_s:.0f} s ({m.steps_per_s:.2f} steps/s on {m.threads_used} threads, batch "
                     f"{m.cfg.batch_size}, context {m.context}, {m.net.n_patches} patches, "
                     f"{trainable_parameters(m.net):,} trainable parameters), best validation MSE {m.best_val:.4f}; "
                     f"predict per series median {1e3 * np.median(single):.1f} ms, p99 "
                     f"{1e3 * np.quantile(single, 0.99):.1f} ms, max {1e3 * max(single):.1f} ms "
                     f"({m.cfg.predict_threads} thread); 300 origins at once {1e3 * day:.0f} ms")
    return rows, notes


def bench_trace(key: str, args) -> None:
    y = load_trace(key)
    if args.dev:
        y = y[: int(args.train * len(y))]  # the held-out part is never read
    n = len(y)
    split = int(args.train * n)
    origins = np.arange(split - 1, n - H, args.stride)
    actual = y[origins[:, None] + np.arange(1, H + 1)[None, :]]
    train = y[:split]
    rows, notes = {}, []

    want = set(args.rows)
    preds = []
    if "forecaster" in want:
        t0 = time.perf_counter()
        f = fit_forecaster(train, PERIOD_5MIN, max_horizon=H)
        fit_s = time.perf_counter() - t0
        latency = []
        for o in origins:
            t0 = time.perf_counter()
            preds.append(f.forecast(y[: o + 1], H))
            latency.append(time.perf_counter() - t0)
        rows["forecaster (default)"] = np.stack([p.values for p in preds])
    if "ours" in want:
        for name in OURS:
            rows[name] = METHODS[name]().fit(train, PERIOD_5MIN, H).predict_many(y, origins, H)
    if "peers" in want:
        t0 = time.perf_counter()
        for name, make in statsforecast_peers(args.slow_peers).items():
            rows[f"statsforecast {name}"] = np.stack([
                make().forecast(y=y[max(0, o + 1 - TRAILING): o + 1], h=H)["mean"] for o in origins])
        notes.append(f"statsforecast peers: {time.perf_counter() - t0:.0f} s for all origins")
    if "gpt4ts" in want:
        t0 = time.perf_counter()
        extra, more = gpt4ts_rows(y, train, origins, args)
        rows.update(extra)
        notes += more + [f"gpt4ts rows: {time.perf_counter() - t0:.0f} s in all"]
    lm = {}
    if "edge_lm" in want:
        lm, note = lm_rows(y, train, origins, args.lm_origins)
        notes.append(note)

    print(f"\n{TRACES[key][1]} ({TRACES[key][0]}{', dev: training part only' if args.dev else ''}): {n} steps, "
          f"fitted on the first {split}, {len(origins)} origins every "
          f"{args.stride} steps; MAE in the trace's units")
    print(f"{'row':<34}" + "".join(f"{s:>12}" for s in STEPS))
    mae = {name: np.abs(v - actual).mean(0) for name, v in rows.items()}
    for name, per_step in mae.items():
        print(f"{name:<34}" + "".join(f"{per_step[h - 1]:>12.1f}" for h in STEPS.values()))
    for name, (v, pick) in lm.items():
        e = np.abs(v - actual[pick]).mean(0)
        ref = mae_on(rows["forecaster (default)"][pick], actual[pick]) if "forecaster (default)" in rows else None
        print(f"{name:<34}" + "".join(f"{e[h - 1]:>12.1f}" for h in STEPS.values())
              + (f"   (forecaster on these origins: {' / '.join(f'{ref[h - 1]:.1f}' for h in STEPS.values())})"
                 if ref is not None else ""))
    if "edge_lm" in lm:  # the ablation: the LM's answer replaced by the last value, on the same origins
        v, pick = lm["edge_lm"]
        for other in ("edge_lm (no LM: last value)", "forecaster (default)"):
            base = lm[other][0] if other in lm else rows[other][pick] if other in rows else None
            if base is None:
                continue
            ratios = [mean_ratio_ci(abs_error_pairs(v, base, actual[pick], h)) for h in STEPS.values()]
            print(f"  edge_lm / {other}, 5 min and 1 h: "
                  + " and ".join(f"{r:.2f} [{lo:.2f}, {hi:.2f}]" for r, lo, hi in ratios))
    for note in notes:
        print(f"  {note}")
    if "forecaster (default)" not in rows:
        return
    ours = mae["forecaster (default)"]
    for label, h in STEPS.items() if len(mae) > 1 else ():  # a best other row needs another row on every origin
        best = min((m for m in mae if m != "forecaster (default)"), key=lambda m: mae[m][h - 1])
        # Paired over origins: both rows' absolute errors of one origin are resampled together.
        _, lo, hi = mean_ratio_ci(abs_error_pairs(rows["forecaster (default)"], rows[best], actual, h))
        print(f"  {label}: forecaster / best other row ({best}) = {ours[h - 1]:.1f} / {mae[best][h - 1]:.1f} = "
              f"{ours[h - 1] / mae[best][h - 1]:.2f} [{lo:.2f}, {hi:.2f}]")
    for lo, hi in ((0.1, 0.9), (0.025, 0.975)):
        low = np.stack([p.quantiles[lo] for p in preds])
        up = np.stack([p.quantiles[hi] for p in preds])
        inside = (low <= actual) & (actual <= up)
        per_step = 100 * inside.mean(0)
        cis = [boot_ci(100 * cols) for cols in (inside, inside[:, 0], inside[:, 11])]  # origins resampled
        print(f"  {hi - lo:.0%} interval coverage: {fmt_ci(cis[0])}% over steps 1-12 (5 min {fmt_ci(cis[1])}%, "
              f"1 h {fmt_ci(cis[2])}%; per step {per_step.min():.1f}-{per_step.max():.1f}%)")
    regimes = sum(p.regime is not None for p in preds)
    print(f"  fit_forecaster: {fit_s:.1f} s, uses {f.name}; regime change in force at {regimes} of the origins")
    print(f"  predict with quantiles and regime check: median {1e3 * np.median(latency):.1f} ms, "
          f"p99 {1e3 * np.quantile(latency, 0.99):.1f} ms, max {1e3 * max(latency):.1f} ms per series")


def fmt_ci(ci: tuple[float, float, float]) -> str:
    return f"{ci[0]:.1f} [{ci[1]:.1f}, {ci[2]:.1f}]"


def mae_on(forecasts: np.ndarray, actual: np.ndarray) -> np.ndarray:
    return np.abs(forecasts - actual).mean(0)


def abs_error_pairs(a: np.ndarray, b: np.ndarray, actual: np.ndarray, h: int) -> np.ndarray:
    """(origins, 2): the absolute errors at step h of two rows' forecasts (origins, H), one origin per row."""
    return np.abs(np.stack([a[:, h - 1], b[:, h - 1]], axis=1) - actual[:, h - 1, None])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", nargs="+", choices=sorted(TRACES), default=sorted(TRACES, reverse=True))
    ap.add_argument("--train", type=float, default=0.75)
    ap.add_argument("--stride", type=int, default=101)
    ap.add_argument("--dev", action="store_true",
                    help="tuning protocol: drop the held-out part, fit on the first --train of the rest, score the rest")
    ap.add_argument("--slow-peers", action="store_true", help="also MSTL daily+weekly and AutoTheta (slow)")
    ap.add_argument("--lm-origins", type=int, default=40)
    ap.add_argument("--rows", nargs="+", choices=ROW_GROUPS, default=list(ROW_GROUPS),
                    help="groups of rows to run (same origins whatever is chosen)")
    ap.add_argument("--gpt4ts-seconds", type=float, default=420.0, help="training budget of gpt4ts per trace")
    ap.add_argument("--gpt4ts-layers", type=int, default=GPT4TS.config.n_layers)
    ap.add_argument("--ablation-max-steps", type=int, default=20000,
                    help="step cap of the no-LM ablation's same-time row (it also stops at --gpt4ts-seconds)")
    args = ap.parse_args()
    if not 0.2 <= args.train <= 0.95 or args.stride < 1:
        raise SystemExit("--train must be in [0.2, 0.95] and --stride >= 1")
    print(f"horizon {H} steps of 5 min, {os.cpu_count()} CPUs; {' '.join(sys.argv)}")
    for key in args.traces:
        bench_trace(key, args)


if __name__ == "__main__":
    main()
