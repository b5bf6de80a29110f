"""Series for forecasting: a generated link trace for tests and benchmarks, and the CSV reader behind the CLI.

The generator is GENERATED data, not a real trace. It is meant to look like a 5-minute ISP link rate (bit/s) with the
features that make real traces hard: a daily shape that is not a sinusoid (night trough, evening peak), weekends that are
lower and shaped differently, a slow trend, day-to-day level changes, autocorrelated multiplicative noise, bursts
(flash crowds lasting 5 minutes to 2 hours), and level shifts (rerouting that lasts days). Every knob is an argument;
the defaults were picked to look plausible, not tuned to make any method win.

`to_counter` / `add_gaps` turn a rate series into what telemetry actually delivers: cumulative byte counters that reset,
and missing samples.

CSV format for `read_csv`: a header row; the value column is `value` (or the only numeric column, or the one named with
`value_col`); an optional `timestamp` column (unix seconds or ISO 8601). With timestamps, rows are sorted and put on a
regular grid (`step_s`, default: the median spacing); empty grid slots become NaN and are filled by the forecaster's
cleaning rules. Without timestamps, rows are taken as already regular.
"""
from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import numpy as np

from netgpt.edge_agent.forecast.forecaster import resample_to_grid

STEP_S_5MIN = 300.0
PERIOD_5MIN = 288  # 5-minute steps per day


def _daily_shape(phase: np.ndarray, rng: np.random.Generator, weekend: bool) -> np.ndarray:
    """Relative load by time of day (phase in [0, 1)): trough around 04:00, evening peak; a few random harmonics."""
    peak = 0.86 if not weekend else 0.80  # evening peak ~20:40 on weekdays, a bit earlier at weekends
    shape = 0.55 + 0.45 * np.exp(-0.5 * ((phase - peak) / 0.16) ** 2)
    if not weekend:  # working-hours plateau
        shape += 0.25 * np.exp(-0.5 * ((phase - 0.5) / 0.12) ** 2)
    shape *= 0.6 + 0.4 * np.clip(np.sin(np.pi * (phase - 0.12)), 0, None) ** 0.5  # deep night trough
    for k in (2, 3, 5):  # fixed (per trace) wiggles so the shape is not a clean sum of two bumps
        shape += 0.03 * np.sin(2 * np.pi * k * phase + rng.uniform(0, 2 * np.pi))
    return shape


def synthetic_link_trace(n_days: int = 42, period: int = PERIOD_5MIN, seed: int = 0, base_bps: float = 4e8,
                         trend_per_week: float = 0.02, day_level_sd: float = 0.05, noise_sd: float = 0.06,
                         noise_ar: float = 0.7, bursts_per_day: float = 1.5, level_shifts: int = 2,
                         weekend_factor: float = 0.8) -> np.ndarray:
    """A generated link rate in bit/s, `n_days * period` steps, starting on a Monday at midnight."""
    rng = np.random.default_rng(seed)
    n = n_days * period
    t = np.arange(n)
    day = t // period
    phase = (t % period) / period
    weekend = (day % 7) >= 5

    wd_shape = _daily_shape(phase, np.random.default_rng(seed + 1), weekend=False)
    we_shape = _daily_shape(phase, np.random.default_rng(seed + 1), weekend=True)
    shape = np.where(weekend, weekend_factor * we_shape, wd_shape)

    trend = 1.0 + trend_per_week * t / (7 * period)
    day_level = np.exp(np.cumsum(rng.normal(0, day_level_sd, n_days)) * 0.3 + rng.normal(0, day_level_sd, n_days))
    level = trend * day_level[day]

    shifts = np.ones(n)  # rerouting: a link carries more (or less) for a few days
    for _ in range(level_shifts):
        start = rng.integers(period * 7, n)
        length = rng.integers(period, 5 * period)
        shifts[start:start + length] *= rng.choice([0.7, 1.3])

    eps = rng.normal(0, noise_sd * np.sqrt(1 - noise_ar**2), n)  # AR(1) multiplicative noise, 5-min correlated
    noise = np.empty(n)
    noise[0] = eps[0]
    for i in range(1, n):  # tiny loop; scipy.signal.lfilter would add a dependency for one line
        noise[i] = noise_ar * noise[i - 1] + eps[i]

    bursts = np.zeros(n)
    for start in np.flatnonzero(rng.random(n) < bursts_per_day / period):
        length = int(rng.integers(1, 24))  # 5 min .. 2 h
        amp = rng.uniform(0.2, 0.8)
        seg = np.arange(min(length, n - start))
        bursts[start:start + len(seg)] += amp * np.exp(-seg / max(1.0, length / 3))

    rate = base_bps * level * shifts * (shape * np.exp(noise) + bursts * shape.mean())
    return np.maximum(rate, 0.0)


def to_counter(rate_bps: np.ndarray, step_s: float = STEP_S_5MIN, resets_at: tuple[int, ...] = (),
               start_bytes: int = 10**9) -> np.ndarray:
    """Cumulative byte counter of a rate series, as a switch reports it; it restarts from 0 at each index in resets_at."""
    inc = rate_bps * step_s / 8.0
    counter = start_bytes + np.concatenate([[0.0], np.cumsum(inc[1:])])
    for i in sorted(resets_at):
        counter[i:] -= counter[i] - inc[i]  # after a reset, the counter holds only what was sent since
    return np.floor(counter)


def add_gaps(series: np.ndarray, n_gaps: int = 5, max_len: int = 6, seed: int = 0) -> np.ndarray:
    """A copy with NaN runs (lost telemetry)."""
    rng = np.random.default_rng(seed)
    out = np.asarray(series, dtype=float).copy()
    for start in rng.integers(0, len(out), n_gaps):
        out[start:start + int(rng.integers(1, max_len + 1))] = np.nan
    return out


class CsvError(ValueError):
    """The CSV cannot be read as a series; the message says why in one line."""


def _parse_ts(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text).timestamp()


def read_csv(path: str | Path, value_col: str | None = None, step_s: float | None = None
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """Returns (values, timestamps or None). Unparsable values become NaN; a file with no usable column raises CsvError."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CsvError(f"cannot read {path}: {exc}") from None
    if not rows or rows[0] is None:
        raise CsvError(f"{path} has no data rows")
    columns = [c for c in rows[0].keys() if c is not None]
    ts_col = next((c for c in columns if c.strip().lower() in ("timestamp", "ts", "time")), None)
    if value_col is None:
        candidates = [c for c in columns if c != ts_col]
        value_col = next((c for c in candidates if c.strip().lower() == "value"), None)
        if value_col is None and len(candidates) == 1:
            value_col = candidates[0]
    if value_col not in columns:
        raise CsvError(f"{path}: no value column (looked for 'value' or a single non-timestamp column; got {columns})")

    def num(text: str | None) -> float:
        try:
            return float(text)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return np.nan

    values = np.array([num(r.get(value_col)) for r in rows])
    if not np.isfinite(values).any():
        raise CsvError(f"{path}: column {value_col!r} has no numeric values")
    if ts_col is None:
        return values, None
    try:
        ts = np.array([_parse_ts(r[ts_col]) for r in rows])
    except (TypeError, ValueError) as exc:
        raise CsvError(f"{path}: bad timestamp in column {ts_col!r}: {exc}") from None
    grid_ts, grid_values = resample_to_grid(ts, values, step_s)
    return grid_values, grid_ts
