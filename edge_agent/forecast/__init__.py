"""Traffic forecasting for the edge agent: the contract (`fit_forecaster`, `Forecaster.predict` / `predict_interval`,
`backtest`; netgpt.edge_agent.forecast.forecaster), its methods (methods.py, lm.py), generated and CSV series
(data.py) and the online loop (loop.py). Importing this package loads no model and registers nothing."""
from netgpt.edge_agent.forecast.forecaster import Forecaster, backtest, fit_forecaster

__all__ = ["Forecaster", "backtest", "fit_forecaster"]
