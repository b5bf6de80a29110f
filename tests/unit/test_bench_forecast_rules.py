"""bench/forecast_rules.py replays the forecaster's selection rule vectorised; its discounted error must be the one
Forecaster._combined computes per origin (the last `window` observed origins, weights 0.5 ** (age / half-life) from the
newest, none while fewer than min_rows are observed), here checked against that definition written as a loop."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.forecast_rules import discounted_mean, top_k_inverse  # noqa: E402


def by_definition(loss, half_life, h, min_rows, window):
    out = np.full(loss.shape, np.nan)
    for i in range(loss.shape[1]):
        rows = np.arange(0, i - h)[-window:]  # origins j whose step h+1 is observed at i: j + h + 1 <= i
        if len(rows) < min_rows:
            continue
        weights = 0.5 ** ((rows[-1] - rows) / half_life)
        out[:, i] = (loss[:, rows] * weights).sum(1) / weights.sum()
    return out


@pytest.mark.parametrize("half_life, h, min_rows, window", [(4, 0, 6, 24), (24, 11, 36, 144), (2.5, 3, 3, 15),
                                                             (np.inf, 1, 12, 24)])
def test_discounted_mean_is_the_forecasters_error(half_life, h, min_rows, window):
    loss = np.random.default_rng(0).lognormal(0, 2, (3, 400))  # errors over orders of magnitude, as bursts make
    got = discounted_mean(loss, half_life, h, min_rows, window)
    want = by_definition(loss, half_life, h, min_rows, window)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], rtol=1e-6)


def test_top_k_inverse_weights_the_k_best_by_the_inverse_score():
    forecasts = np.array([[1.0, 1.0], [2.0, 2.0], [4.0, 4.0]])  # (methods, origins)
    score = np.array([[1.0, np.nan], [3.0, np.nan], [0.5, np.nan]])  # origin 1: no method has a score
    out = top_k_inverse(forecasts, score, k=2)
    assert out[0] == pytest.approx((1.0 / 1.0 + 4.0 / 0.5) / (1 / 1.0 + 1 / 0.5))  # methods 0 and 2; 1 left out
    assert np.isnan(out[1])
