"""`netgpt forecast ...` commands. Heavy imports stay inside the commands."""
import typer

forecast_app = typer.Typer(help="Traffic forecasting: backtests and plots.", no_args_is_help=True)
