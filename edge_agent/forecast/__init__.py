"""Traffic forecasting for the edge agent: the contract (`fit_forecaster`, `Forecaster.predict` / `predict_interval`;
netgpt.edge_agent.forecast.forecaster), the method table and `backtest` (backtesting.py), its methods (methods.py, lm.py),
generated and CSV series (data.py) and the online loop (loop.py). Importing this package loads no model and registers
nothing."""
from netgpt.edge_agent.forecast.backtesting import backtest
from netgpt.edge_agent.forecast.forecaster import Forecaster, fit_forecaster

__all__ = ["Forecaster", "backtest", "fit_forecaster"]
