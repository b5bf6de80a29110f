"""The method registry and the rolling-origin backtest behind fit_forecaster (netgpt.edge_agent.forecast.forecaster).

METHODS lists every method fit_forecaster and backtest can use, by name; DEFAULT_METHODS are the candidates when
`methods` is not given (default_methods adds edge_lm when Settings.forecast_lm is set), ALWAYS the two that are
candidates whatever `methods` says, and available_methods leaves out, with the reason logged, the ones that cannot run
here. backtest fits each method on the series' head and forecasts from every origin of its tail without look-ahead;
fit_forecaster selects and combines on its errors (the forecaster's module doc says how).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from netgpt.core.settings import Settings, get_settings
from netgpt.edge_agent.forecast.clean import clean_series
from netgpt.edge_agent.forecast.gpt4ts import GPT4TS, PatchLinear
from netgpt.edge_agent.forecast.lm import EdgeLMForecast
from netgpt.edge_agent.forecast.methods import (Boosted, DampedTrend, Method, Persistence, ProfileRidge, RidgeLags,
                                                SeasonalDrift, SeasonalNaive)

log = logging.getLogger(__name__)

__all__ = ["METHODS", "DEFAULT_METHODS", "ALWAYS", "LM_METHOD", "default_methods", "available_methods",
           "BacktestResult", "backtest"]

# Every method fit_forecaster and backtest can use, by name. Nothing registers itself: a new method is listed here.
METHODS: dict[str, type[Method]] = {
    m.name: m for m in (Persistence, SeasonalNaive, SeasonalDrift, RidgeLags, ProfileRidge, Boosted, DampedTrend,
                        EdgeLMForecast, GPT4TS, PatchLinear)}
# gpt4ts (SmolLM2 layers + LoRA, netgpt.edge_agent.forecast.gpt4ts) and its no-LM ablation patch_linear are opt-in
# (methods=(..., "gpt4ts")): minutes of training per fit, and the rolling re-selection would run them on a day of
# origins at every forecast (README, "LoRA models as predictors").
# ridge_lags (the old baseline) is not a default: its intercept is in absolute units, so it cannot follow a
# level that grows past the training range (WC98: 2.6x persistence at 1 h). It stays a method and a bench row.
DEFAULT_METHODS = ("persistence", "seasonal_naive", "seasonal_drift", "profile_ridge", "boosted", "damped_trend")
ALWAYS = ("persistence", "seasonal_naive")  # candidates whatever `methods` says
LM_METHOD = EdgeLMForecast.name


def default_methods(settings: Settings | None = None) -> tuple[str, ...]:
    """DEFAULT_METHODS, plus edge_lm when Settings.forecast_lm is set (NETGPT_FORECAST_LM=1)."""
    lm = (settings or get_settings()).forecast_lm
    return DEFAULT_METHODS + ((LM_METHOD,) if lm else ())


def available_methods(methods) -> list[str]:
    """Methods that can run here; the others (their `unavailable()` gives a reason) are logged and left out."""
    out = []
    for m in methods:
        reason = METHODS[m].unavailable()
        if reason:
            log.warning("forecast: leaving out %s: %s", m, reason)
        else:
            out.append(m)
    return out


# --- backtest ----------------------------------------------------------------------------------------------------------

@dataclass
class BacktestResult:
    origins: np.ndarray  # index of the last observation each forecast saw
    actual: np.ndarray  # (n_origins, horizon)
    forecasts: dict[str, np.ndarray]  # method -> (n_origins, horizon)

    def mae(self) -> dict[str, np.ndarray]:
        return {m: np.abs(f - self.actual).mean(0) for m, f in self.forecasts.items()}

    def rmse(self) -> dict[str, np.ndarray]:
        return {m: np.sqrt(((f - self.actual) ** 2).mean(0)) for m, f in self.forecasts.items()}


def backtest(series: np.ndarray, period: int, horizon: int, methods: tuple[str, ...] | list[str] = DEFAULT_METHODS,
             test_len: int | None = None, stride: int = 1, clean: bool = True, refits: int = 1) -> BacktestResult:
    """Rolling-origin backtest without look-ahead: every method is fitted on series[:split] only, and the forecast
    from origin o reads series[:o + 1] only. Origins run from split - 1 to the last one with `horizon` actual values.
    `refits` > 1 cuts the origins into that many consecutive blocks and refits every method at the start of each on
    everything before it, as the online loop refits: a learned method is then judged with the data it will have, not
    only with what the first block saw. The selected ensemble's own row: forecaster.backtest_with_forecaster."""
    y = clean_series(series, period)[0] if clean else np.asarray(series, dtype=float)
    n = len(y)
    test_len = test_len or max(min(7 * period, n // 4), horizon + 1)
    split = n - test_len
    if split < period or test_len <= horizon:
        raise ValueError(f"series of {n} is too short for a backtest with test_len={test_len}, horizon={horizon}")
    origins = np.arange(split - 1, n - horizon, stride)
    actual = y[origins[:, None] + np.arange(1, horizon + 1)[None, :]]
    forecasts = {}
    for name in methods:
        need = METHODS[name].min_fit_length(period, horizon)
        if split < need:
            log.info("backtest: skipping %s (needs %d observations to fit, has %d)", name, need, split)
            continue
        blocks = np.array_split(np.arange(len(origins)), max(1, min(refits, len(origins))))
        forecasts[name] = np.concatenate([
            METHODS[name]().fit(y[: origins[b[0]] + 1], period, horizon, plan_length=split).predict_many(
                y, origins[b], horizon) for b in blocks])
    return BacktestResult(origins=origins, actual=actual, forecasts=forecasts)
