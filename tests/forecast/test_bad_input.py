"""NaN and gaps, counter resets, short series: handled as the module doc says, and never a NaN forecast."""
import numpy as np
import pytest

from netgpt.edge_agent.forecast.forecaster import clean_series, counters_to_rates, fit_forecaster, resample_to_grid
from netgpt.edge_agent.forecast.data import add_gaps, to_counter
from tests.forecast.conftest import PERIOD


@pytest.fixture(scope="module")
def fitted(diurnal):
    return fit_forecaster(diurnal[: 21 * PERIOD], PERIOD, max_horizon=6)


def test_nan_and_gaps_give_finite_forecasts(diurnal, fitted):
    gappy = add_gaps(diurnal, n_gaps=30, max_len=10, seed=1)
    gappy[-3:] = np.nan  # the latest samples are missing too
    gappy[-PERIOD * 2: -PERIOD * 2 + 20] = np.inf
    point, lower, upper = fitted.predict_interval(gappy, 40, level=0.8)  # also beyond max_horizon
    assert len(point) == 40 and np.isfinite(point).all() and np.isfinite(lower).all() and np.isfinite(upper).all()
    f = fit_forecaster(gappy[: 21 * PERIOD], PERIOD, max_horizon=6)
    assert np.isfinite(f.predict(gappy, 6)).all()


def test_clean_series_rules():
    y = np.arange(30, dtype=float)
    y[3:5] = np.nan  # short gap -> linear
    y[12:22] = np.nan  # long gap (> period // 12 = 1 with period 12) -> one period earlier
    filled, mask = clean_series(y, period=12, max_gap=3)
    np.testing.assert_allclose(filled[3:5], [3, 4])
    np.testing.assert_allclose(filled[12:22], filled[0:10])
    assert mask.sum() == 12
    with pytest.raises(ValueError, match="no finite"):
        clean_series(np.full(10, np.nan), period=4)


def test_counter_resets_are_not_negative_traffic(diurnal):
    rate = diurnal[:200]
    counter = to_counter(rate, step_s=300, resets_at=(50, 120))
    assert (np.diff(counter) < 0).sum() == 2
    ts = 1.7e9 + 300 * np.arange(200)
    out_ts, out_rate = counters_to_rates(ts, counter)
    assert (out_rate >= 0).all() and len(out_rate) == 199
    np.testing.assert_allclose(out_rate, rate[1:], rtol=1e-6, atol=1e-6 * rate.max())


def test_duplicate_timestamps_become_gaps():
    _, rate = counters_to_rates(np.array([0.0, 1.0, 1.0, 2.0]), np.array([0, 100, 150, 200]))
    assert np.isnan(rate[1]) and rate[0] == 800 and rate[2] == 400


def test_resample_to_grid_leaves_empty_steps_nan():
    ts = np.array([0.0, 0.4, 1.1, 3.2])
    grid_ts, values = resample_to_grid(ts, np.array([1.0, 3.0, 5.0, 7.0]), step_s=1.0)
    np.testing.assert_allclose(grid_ts, [0, 1, 2, 3])
    np.testing.assert_allclose(values[[0, 1, 3]], [2, 5, 7])
    assert np.isnan(values[2])


def test_short_series_is_a_clear_error(diurnal):
    with pytest.raises(ValueError, match=r"at least one period plus the horizon \(48 \+ 6 = 54\)"):
        fit_forecaster(diurnal[:40], PERIOD, max_horizon=6)


def test_between_one_and_a_few_periods_fits_only_the_baselines(diurnal):
    y = diurnal[: 2 * PERIOD]
    f = fit_forecaster(y, PERIOD, max_horizon=6)
    # the learned methods need more data; damped_trend (last value + damped trend) needs no more than the baselines
    assert set(f.methods) <= {"persistence", "seasonal_naive", "damped_trend"}
    naive, last = diurnal[PERIOD: PERIOD + 6], np.full(6, y[-1])
    trend = f.methods["damped_trend"].predict(y, 6) if "damped_trend" in f.methods else last
    f.band[0], f.band[1] = -np.inf, np.inf  # no regime change: its re-weighted history would move seasonal naive
    got = f.predict(y, 6)  # per step: a weighted mean of these (one of them alone included)
    lo, hi = np.minimum(np.minimum(naive, last), trend), np.maximum(np.maximum(naive, last), trend)
    assert np.all((lo - 1e-6 * hi <= got) & (got <= hi * (1 + 1e-6))), (got, naive, last)


def test_short_history_falls_back_or_fails_clearly(diurnal, fitted):
    assert fitted.min_history > PERIOD + 5
    short = diurnal[: PERIOD + 5]
    np.testing.assert_allclose(fitted.predict(short, 3), short[5:8])  # seasonal naive fallback
    with pytest.raises(ValueError, match="at least one period"):
        fitted.predict(diurnal[: PERIOD - 1], 3)
    with pytest.raises(ValueError, match="horizon"):
        fitted.predict(diurnal, 0)
