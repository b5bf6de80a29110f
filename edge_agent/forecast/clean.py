"""Cleaning what telemetry delivers into a regular series for the forecaster (the rules are in
netgpt.edge_agent.forecast.forecaster's module doc): gaps, counter resets, irregular timestamps; and the scale that
forecast errors are expressed in."""
from __future__ import annotations

import numpy as np

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


# The level never counts as less than this share of the mean |y| over a longer window (a week for the errors and the
# bands, the days a learned method's profile reads for its features). On both bench traces' training parts the last
# hour's mean fell below a quarter of the last week's at none of the steps (UK, lowest 0.39) and at 0.09% of them (WC98,
# an outage: 0.09), so the floor leaves smooth traffic as it is and binds on outages and on quiet ports with bursts,
# where a near-zero last hour turned every burst into an error or feature of thousands of levels
# (tests/forecast/test_quiet_ports.py).
LEVEL_FLOOR = 0.25


def recent_level(y: np.ndarray, origins: np.ndarray, window: int = 12, floor_window: int | None = None,
                 floor: float = LEVEL_FLOOR) -> np.ndarray:
    """Mean |y| over the `window` steps up to each origin (an hour at 5 min): the scale forecast errors and intervals
    are expressed in. The last hour rather than the last day, so that after a flash crowd or a level shift the band
    scales with the new level within the hour. With `floor_window`, at least `floor` times the mean |y| over the last
    `floor_window` steps (as many as there are): an hour of near silence between bursts must not make the scale near
    zero (LEVEL_FLOOR)."""
    c = np.concatenate([[0.0], np.cumsum(np.abs(y))])
    start = np.maximum(origins + 1 - window, 0)
    level = (c[origins + 1] - c[start]) / (origins + 1 - start)
    if floor_window:
        first = np.maximum(origins + 1 - floor_window, 0)
        level = np.maximum(level, floor * (c[origins + 1] - c[first]) / (origins + 1 - first))
    return level + 1e-6 * (float(np.mean(np.abs(y))) + 1e-12)
