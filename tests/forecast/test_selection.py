"""The online re-selection: per step, the `select_top` methods with the lowest discounted squared error over the
observed origins of the selection window, weighted by the inverse of it (forecaster.Forecaster._combined)."""
import dataclasses

import numpy as np
import pytest

from netgpt.edge_agent.forecast.forecaster import fit_forecaster
from tests.forecast.conftest import PERIOD


@pytest.fixture(scope="module")
def fitted(diurnal):
    return fit_forecaster(diurnal[: 20 * PERIOD], PERIOD, max_horizon=6)


@pytest.mark.parametrize("top", [1, 2, 3])
def test_it_combines_the_top_methods_by_inverse_mse(diurnal, fitted, top):
    f = dataclasses.replace(fitted, select_top=top)
    y = diurnal[: 24 * PERIOD]
    origins = np.arange(22 * PERIOD, 24 * PERIOD - 7)
    seen = origins[:, None] + np.arange(1, 7)[None, :] <= origins[-1]
    _, weights = f._combined(y, origins, seen)
    names = list(f.methods)
    for h in range(6):
        rows = np.flatnonzero(seen[:, h])[-f.select_window:]
        actual = y[origins[rows] + h + 1]
        discount = 0.5 ** ((origins[rows[-1]] - origins[rows]) / f.select_half_life)
        mse = {m: np.sum(discount * (f.methods[m].predict_many(y, origins[rows], 6)[:, h] - actual) ** 2)
               / discount.sum()
               for m in names if f.methods[m].covers(h)}
        used = [m for j, m in enumerate(names) if weights[h, j] > 0]
        assert len(used) == min(top, len(mse)), (h, used)
        assert max(mse[m] for m in used) <= min(v for m, v in mse.items() if m not in used)
        w = {m: weights[h, names.index(m)] for m in used}
        assert np.isclose(sum(w.values()), 1.0)
        # inverse-MSE weights: weight x MSE is the same for every method used
        assert np.allclose([w[m] * mse[m] for m in used], w[used[0]] * mse[used[0]], rtol=1e-6)


def test_it_keeps_fits_choice_until_enough_origins_are_observed(diurnal, fitted):
    """Fewer than select_min observed origins at a step: fit's weights there; from select_min on: the re-selection."""
    f = fitted
    y = diurnal[: 24 * PERIOD]
    origins = np.arange(22 * PERIOD, 24 * PERIOD - 7)
    seen = np.zeros((len(origins), 6), dtype=bool)
    seen[-(f.select_min - 1):, 0] = True  # one short at step 1
    seen[-f.select_min:, 1] = True  # just enough at step 2
    _, weights = f._combined(y, origins, seen)
    np.testing.assert_array_equal(weights[0], f.weights[0])
    assert (f.weights[1] > 0).sum() <= 2 < f.select_top  # fit keeps one method or the mean of two ...
    assert (weights[1] > 0).sum() == f.select_top  # ... the re-selection the top three


@pytest.mark.parametrize("field", ["selection_window", "selection_half_life"])
@pytest.mark.parametrize("value", [0, -2, float("nan")])
def test_a_selection_window_or_half_life_must_be_positive(fitted, field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(fitted, **{field: value})
