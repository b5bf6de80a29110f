"""damped_trend (the last value plus a damped recent trend) follows a ramp better than persistence a few steps ahead,
reads nothing after the origin, and the forecaster combines it at steps 1..max_step only."""
import numpy as np

from netgpt.edge_agent.forecast.backtesting import DEFAULT_METHODS
from netgpt.edge_agent.forecast.forecaster import fit_forecaster
from netgpt.edge_agent.forecast.methods import DampedTrend
from tests.forecast.conftest import PERIOD


def test_it_carries_a_ramp_on_and_damps_it():
    rng = np.random.default_rng(0)
    y = 100 + 2.0 * np.arange(400) + rng.normal(0, 0.5, 400)
    m = DampedTrend().fit(y[:300], PERIOD, 6)
    origins = np.arange(300, 390)
    f = m.predict_many(y, origins, 6)
    actual = y[origins[:, None] + np.arange(1, 7)[None, :]]
    assert np.abs(f[:, 0] - actual[:, 0]).mean() < 0.5 * np.abs(y[origins] - actual[:, 0]).mean()
    # damped: the forecast's slope fades by phi per step (2 * 0.9 ** h ahead)
    steps = np.diff(np.concatenate([y[origins][:, None], f], axis=1), axis=1).mean(0)
    assert np.allclose(steps, 2.0 * DampedTrend.phi ** np.arange(1, 7), rtol=0.1), steps
    # no look-ahead: a forecast from a history cut at the origin is the same row
    for o in (300, 345, 389):
        assert np.allclose(m.predict(y[: o + 1], 6), f[o - 300])


def test_the_forecaster_uses_it_at_its_steps_only():
    """On a ramp it beats persistence and seasonal naive at every step, yet has no weight after max_step."""
    assert "damped_trend" in DEFAULT_METHODS
    rng = np.random.default_rng(1)
    y = 100 + 2.0 * np.arange(24 * PERIOD) + rng.normal(0, 0.5, 24 * PERIOD)
    f = fit_forecaster(y[: 20 * PERIOD], PERIOD, max_horizon=6, methods=("damped_trend",))
    j = list(f.methods).index("damped_trend")
    k = DampedTrend.max_step
    assert f.weights[:k, j].all() and not f.weights[k:, j].any(), f.weights
    origins = np.arange(22 * PERIOD, 24 * PERIOD - 7)
    _, weights = f._combined(y, origins, origins[:, None] + np.arange(1, 7)[None, :] <= origins[-1])
    assert weights[:k, j].all() and not weights[k:, j].any(), weights


def test_it_is_holts_damped_recurrence_with_the_last_value_as_level():
    """The vectorised filter is the recurrence slope_t = beta (y_t - y_t-1) + (1 - beta) phi slope_t-1 from 0 at
    warmup steps before the first origin, forecast y_o + clip(slope_o) (phi + ... + phi^h), written out here."""
    rng = np.random.default_rng(3)
    y = np.cumsum(rng.normal(0, 1, 600)) + 200
    m = DampedTrend().fit(y, PERIOD, 6)
    origins = np.array([70, 71, 200, 599])
    start = origins.min() - DampedTrend.warmup
    slope, slopes = 0.0, {}
    for t in range(start + 1, origins.max() + 1):
        slope = DampedTrend.beta * (y[t] - y[t - 1]) + (1 - DampedTrend.beta) * DampedTrend.phi * slope
        slopes[t] = slope
    damp = np.cumsum(DampedTrend.phi ** np.arange(1, 7))
    cap = DampedTrend.max_slope * np.abs(y[origins])
    expected = y[origins][:, None] + np.clip([slopes[o] for o in origins], -cap, cap)[:, None] * damp
    assert np.allclose(m.predict_many(y, origins, 6), expected, rtol=1e-12, atol=1e-9)
