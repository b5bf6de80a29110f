"""The rolling rules of predict: the combination follows the methods' last hours, and the intervals are calibrated per
step on a real trace (a slice of the UK backbone trace in bench/data/)."""
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from netgpt.edge_agent.forecast.data import PERIOD_5MIN, read_csv
from netgpt.edge_agent.forecast.forecaster import fit_forecaster, weighted_quantiles

TRACE = Path(__file__).resolve().parents[2] / "bench" / "data" / "isp_uk_academic_5min.csv"
H = 12
FIT = 3 * 7 * PERIOD_5MIN  # three weeks to fit on


def test_the_combination_follows_the_method_that_is_right_in_the_last_hours():
    """A random walk (persistence right, seasonal naive wrong) whose last 20 steps repeat the day before: the selection
    window (half the period) reaches further back, but its errors are discounted (half-life a twelfth of the period, 4
    steps here), so step 1 lies mostly on seasonal naive's side (about three quarters of the weight); the same
    window's plain mean puts it on persistence's side, and a two-day window's almost on persistence."""
    period = 48
    y = 100 + np.cumsum(np.random.default_rng(3).normal(0, 1, 12 * period))
    y[-20:] = y[-20 - period: -period]
    f = fit_forecaster(y[: 8 * period], period, max_horizon=4, methods=("persistence", "seasonal_naive"))
    naive, last = y[len(y) - period], y[-1]  # seasonal naive's and persistence's step 1
    gap = abs(naive - last)
    assert f.select_window == period // 2 and f.select_half_life == period / 12
    step1 = f.predict(y, 4)[0]
    assert abs(step1 - naive) < 0.3 * gap, (step1, naive, last)  # measured 0.23 of the gap
    flat = replace(f, selection_half_life=math.inf)
    assert abs(flat.predict(y, 4)[0] - naive) > 0.5 * gap  # 0.66
    assert abs(replace(flat, selection_window=2 * period).predict(y, 4)[0] - naive) > 0.5 * gap  # 0.99


def test_all_recent_weight_reads_only_the_recent_errors():
    pool, recent = np.linspace(-10, 10, 101), np.linspace(-1, 1, 11)
    levels = np.array([0.1, 0.9])
    np.testing.assert_allclose(weighted_quantiles(pool, recent, 1.0, levels), np.quantile(recent, levels))
    mixed = weighted_quantiles(pool, recent, 0.5, levels)
    assert mixed[0] < -1 and mixed[1] > 1  # half the mass on the wide pool widens the band


@pytest.fixture(scope="module")
def uk_forecasts():
    y = read_csv(TRACE)[0][: FIT + 6 * PERIOD_5MIN]
    f = fit_forecaster(y[:FIT], PERIOD_5MIN, max_horizon=H)
    # Four days, every 15 minutes, from two days after the fitted part on: the rolling window (two days) then holds no
    # error of a method on data it was fitted on, which would be too small (right after a fit the bands are narrower).
    origins = np.arange(FIT + 2 * PERIOD_5MIN, len(y) - H, 3)
    actual = np.stack([y[o + 1: o + 1 + H] for o in origins])
    return actual, [f.forecast(y[: o + 1], H) for o in origins]


@pytest.mark.parametrize("level", [0.8, 0.95])
def test_intervals_hold_per_step_on_a_real_trace(uk_forecasts, level):
    """Coverage of the central interval at 5 min and at 1 h ahead, over four days: within 7 points of nominal (380
    correlated origins per step, so a looser bound than the bench's 5 points over the held-out part)."""
    actual, preds = uk_forecasts
    lo, hi = np.stack([p.interval(level)[0] for p in preds]), np.stack([p.interval(level)[1] for p in preds])
    covered = ((lo <= actual) & (actual <= hi)).mean(0)
    for step in (0, H - 1):
        assert abs(covered[step] - level) <= 0.07, (step + 1, covered[step])
