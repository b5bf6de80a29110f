"""The selected forecaster beats seasonal naive on a generated diurnal series with noise and bursts."""
import numpy as np

from netgpt.edge_agent.forecast.forecaster import backtest_with_forecaster, fit_forecaster
from tests.forecast.conftest import PERIOD


def test_forecaster_beats_seasonal_naive(diurnal):
    result = backtest_with_forecaster(diurnal, PERIOD, horizon=6, test_len=5 * PERIOD,
                                      methods=("seasonal_naive", "ridge_lags", "profile_ridge", "boosted"))
    mae = {m: v.mean() for m, v in result.mae().items()}
    assert mae["forecaster"] < 0.8 * mae["seasonal_naive"], mae


def test_prediction_interval_covers_most_actuals(diurnal):
    split, h = len(diurnal) - 4 * PERIOD, 6
    f = fit_forecaster(diurnal[:split], PERIOD, max_horizon=h)
    inside = []
    for origin in range(split - 1, len(diurnal) - h, 3):
        point, lower, upper = f.predict_interval(diurnal[: origin + 1], h, level=0.9)
        assert np.all(lower <= point) and np.all(point <= upper)
        actual = diurnal[origin + 1: origin + 1 + h]
        inside.append((lower <= actual) & (actual <= upper))
    coverage = np.mean(inside)
    assert 0.7 <= coverage <= 0.99, coverage  # a 90% band, estimated on a short tail: loose bounds
