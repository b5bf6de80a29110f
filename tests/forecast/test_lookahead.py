"""No forecast may depend on data after its origin: neither through fitting nor through the features."""
import numpy as np
import pytest

from netgpt.edge_agent.forecast.backtesting import METHODS, backtest
from netgpt.edge_agent.forecast.forecaster import fit_forecaster
from netgpt.edge_agent.forecast.methods import Method, SeasonalNaive
from tests.forecast.conftest import PERIOD


@pytest.mark.parametrize("name", ["seasonal_naive", "ridge_lags", "profile_ridge", "boosted"])
def test_backtest_forecasts_ignore_the_future(diurnal, name):
    """Change every value from index k on: forecasts from origins before k must not move."""
    test_len, h = 4 * PERIOD, 6
    k = len(diurnal) - test_len + PERIOD  # one day into the test window
    changed = diurnal.copy()
    changed[k:] = changed[k:] * 3.0 + 1e8
    a = backtest(diurnal, PERIOD, h, methods=[name], test_len=test_len).forecasts[name]
    b = backtest(changed, PERIOD, h, methods=[name], test_len=test_len).forecasts[name]
    origins = backtest(diurnal, PERIOD, h, methods=["seasonal_naive"], test_len=test_len).origins
    before = origins < k
    np.testing.assert_allclose(a[before], b[before], rtol=1e-9)
    assert not np.allclose(a[~before], b[~before])  # the check can fail: later forecasts do see the change


@pytest.mark.parametrize("name", ["ridge_lags", "boosted"])
def test_vectorised_backtest_equals_single_forecasts(diurnal, name):
    """predict_many (used by backtests) must equal predict on the truncated history."""
    train = diurnal[: 20 * PERIOD]
    m = METHODS[name]().fit(train, PERIOD, 6)
    origins = np.array([20 * PERIOD - 1, 22 * PERIOD + 5, len(diurnal) - 7])
    many = m.predict_many(diurnal, origins, 6)
    single = np.stack([m.predict(diurnal[: o + 1], 6) for o in origins])
    np.testing.assert_allclose(many, single, rtol=1e-9)


class _Spy(SeasonalNaive):
    """Records the data it is given; listed in METHODS (for one test) like any method."""

    seen_fit: list[int] = []
    seen_origins: list[int] = []

    def fit(self, y, period, max_horizon, plan_length=None):
        _Spy.seen_fit.append(len(y))
        return super().fit(y, period, max_horizon)

    def predict_many(self, y, origins, horizon):
        _Spy.seen_origins.extend(int(o) for o in origins)
        return np.stack([super(_Spy, self).predict_many(y[: o + 1], np.array([o]), horizon)[0] for o in origins])


def test_backtest_fits_only_before_the_test_window(diurnal, monkeypatch):
    monkeypatch.setitem(METHODS, "spy", _Spy)
    test_len = 4 * PERIOD
    result = backtest(diurnal, PERIOD, 6, methods=["spy"], test_len=test_len)
    split = len(diurnal) - test_len
    assert _Spy.seen_fit == [split]
    assert min(_Spy.seen_origins) == split - 1 and max(result.origins) + 6 == len(diurnal) - 1


def test_predict_uses_only_the_history_it_is_given(diurnal):
    f = fit_forecaster(diurnal[: 21 * PERIOD], PERIOD, max_horizon=6)
    history = diurnal[: 24 * PERIOD]
    first = f.predict(history, 6)
    noisy = diurnal.copy()
    noisy[24 * PERIOD:] = 0
    np.testing.assert_array_equal(first, f.predict(noisy[: 24 * PERIOD], 6))
    assert isinstance(f.methods[next(iter(f.methods))], Method)
