"""bench/stats.boot_ci: the benches' 95% intervals (resampling whole rows, so paired statistics stay paired)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.stats import boot_ci  # noqa: E402


def test_rows_are_resampled_whole_so_a_paired_ratio_is_exact():
    rng = np.random.default_rng(1)
    a = rng.exponential(size=50)
    pair = np.stack([a, 2 * a], axis=1)  # every unit's second error is twice its first
    point, lo, hi = boot_ci(pair, lambda e: e[:, 0].mean() / e[:, 1].mean())
    assert point == lo == hi == 0.5  # resampling columns apart would spread the ratio


def test_interval_holds_the_point_and_narrows_with_more_units():
    rng = np.random.default_rng(2)
    small, large = rng.normal(10, 1, 40), rng.normal(10, 1, 4000)
    p1, lo1, hi1 = boot_ci(small)
    p2, lo2, hi2 = boot_ci(large, n=500)
    assert lo1 < p1 < hi1 and lo2 < p2 < hi2
    assert lo2 < 10 < hi2
    assert (hi2 - lo2) < (hi1 - lo1) / 5  # sqrt(100) = 10 times narrower in theory


def test_coverage_of_a_boolean_matrix_is_a_percentage_interval():
    inside = np.zeros((44, 12), dtype=bool)
    inside[:40, 0] = True  # 40 of 44 origins inside at step 1
    point, lo, hi = boot_ci(100 * inside[:, 0])
    assert round(point, 1) == 90.9 and lo < 90.9 < hi <= 100
