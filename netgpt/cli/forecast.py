"""`netgpt forecast ...` commands.

The forecasting modules (numpy, scikit-learn) and matplotlib are imported inside the commands: `netgpt --help` and every
other command must not load them.
"""
from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.table import Table

from netgpt.cli.common import console, fail
from netgpt.core import bus

app = typer.Typer(help="Traffic forecasting: backtests and plots.", no_args_is_help=True)


@app.command("backtest")
def backtest_cmd(
    csv: Path = typer.Option(..., help="CSV with a header: a 'value' column (or a single numeric column) and an "
                                       "optional 'timestamp' column (unix seconds or ISO 8601)"),
    period: int = typer.Option(..., help="Steps per season, e.g. 288 for a day of 5-minute samples"),
    horizon: int = typer.Option(..., help="Steps ahead to forecast, e.g. 12 for one hour at 5 minutes"),
    test_days: float = typer.Option(0, help="Length of the test window in periods (default: one week, at most a "
                                            "quarter of the series)"),
    stride: int = typer.Option(1, help="Forecast from every stride-th origin of the test window"),
    plot: Path = typer.Option(Path("forecast_backtest.png"), help="Where to write the forecast-vs-actual plot"),
    value_col: str = typer.Option(None, help="Name of the value column, if not 'value'"),
) -> None:
    """Rolling-origin backtest of every method and the selected forecaster: MAE and RMSE per method, and a plot."""
    from netgpt.edge_agent.forecast.data import CsvError, read_csv
    from netgpt.edge_agent.forecast.backtesting import DEFAULT_METHODS
    from netgpt.edge_agent.forecast.forecaster import backtest_with_forecaster

    if period < 2 or horizon < 1 or stride < 1:
        fail("--period must be >= 2, --horizon >= 1 and --stride >= 1")
    try:
        values, _ = read_csv(csv, value_col=value_col)
        test_len = int(test_days * period) or None
        result = backtest_with_forecaster(values, period, horizon, methods=DEFAULT_METHODS, test_len=test_len,
                                          stride=stride)
    except (CsvError, ValueError) as exc:
        fail(str(exc))

    mae, rmse = result.mae(), result.rmse()
    table = Table(title=f"{csv.name}: {len(result.origins)} origins, horizon {horizon} (mean over steps; "
                        f"step {horizon})")
    for col in ("method", "MAE", "RMSE", f"MAE h={horizon}", f"RMSE h={horizon}"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for name in result.forecasts:
        table.add_row(name, f"{mae[name].mean():.4g}", f"{rmse[name].mean():.4g}", f"{mae[name][-1]:.4g}",
                      f"{rmse[name][-1]:.4g}")
    console.print(table)
    _plot(result, horizon, plot)
    console.print(f"plot: {plot}")


def _plot(result, horizon: int, path: Path) -> None:
    """Actual series over the test window and each method's forecast `horizon` steps ahead, aligned by target time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = result.origins + horizon
    fig, ax = plt.subplots(figsize=(12, 4))
    ax.plot(target, result.actual[:, -1], color="black", lw=1.2, label="actual")
    for name, f in result.forecasts.items():
        ax.plot(target, f[:, -1], lw=0.9, alpha=0.8, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("value")
    ax.set_title(f"forecast {horizon} steps ahead vs actual")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


@app.command("run")
def run_cmd(
    period: int = typer.Option(None, help="Steps per season (default: Settings.forecast_period)"),
    step_s: float = typer.Option(None, help="Forecast step in seconds; telemetry is averaged into such steps "
                                            "(default: Settings.forecast_step_s)"),
    horizon: int = typer.Option(None, help="Steps ahead to forecast (default: Settings.forecast_horizon)"),
    refit_every_s: float = typer.Option(None, help="Refit each target's forecaster this often "
                                                   "(default: Settings.forecast_refit_s)"),
    consumer: str = typer.Option("edge-1", help="Consumer name in the 'edge-forecast' group"),
    seconds: float = typer.Option(None, help="Stop after this many seconds (default: until Ctrl-C)"),
) -> None:
    """Online loop: read telemetry and inferred user intents from Redis (consumer group), publish Forecast messages
    to netgpt:forecasts. `netgpt up` starts it with the settings. While Redis is down (not started yet, restarting)
    the loop logs it and waits. For days of 5-minute steps: --step-s 300 --period 288 --horizon 12."""
    from netgpt.core.settings import get_settings
    from netgpt.edge_agent.forecast.loop import ForecastLoop

    s = get_settings()
    period, step_s = period or s.forecast_period, step_s or s.forecast_step_s
    horizon, refit_every_s = horizon or s.forecast_horizon, refit_every_s or s.forecast_refit_s
    if period < 2 or step_s <= 0 or horizon < 1 or refit_every_s <= 0:
        fail("--period must be >= 2, --horizon >= 1, --step-s and --refit-every-s > 0")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    loop = ForecastLoop(bus.connect(s), period=period, step_s=step_s, horizon=horizon, refit_every_s=refit_every_s,
                        consumer=consumer)
    try:
        loop.run(stop_after_s=seconds)
    except KeyboardInterrupt:
        pass


@app.command("train-lm")
def train_lm_cmd(
    series: list[Path] = typer.Option(..., "--series", help="A CSV trace to cut windows from (repeat for several); "
                                                          "read as `backtest` reads --csv"),
    fit_fraction: float = typer.Option(0.75, help="Read only this first part of each trace (the part "
                                                  "bench/forecast.py fits on); its last tenth gives the eval windows"),
    steps: int = typer.Option(200, min=1, help="Optimiser steps"),
    batch_size: int = typer.Option(8, min=1),
    lr: float = typer.Option(2e-3, min=0, help="Learning rate"),
    n_train: int = typer.Option(2000, min=1, help="Training windows"),
    n_eval: int = typer.Option(100, min=1, help="Eval windows (at most 100, the task's budget; the first 50 are "
                                                "also answered by generation)"),
    seed: int = typer.Option(0),
    minutes: float = typer.Option(None, help="Wall-clock cap for the optimiser steps"),
    out: Path = typer.Option(None, help="Output folder (default: <cache>/adapters/forecast)"),
) -> None:
    """Train the edge LM's `forecast` LoRA adapter (the edge_lm method) on windows of real traces instead of the
    generated series of `netgpt models train --task forecast`: the windows are scaled as edge_lm scales its input,
    so the adapter learns the prompts it will be asked."""
    from netgpt.core.settings import get_settings
    from netgpt.edge_agent.forecast.data import CsvError, read_csv
    from netgpt.edge_agent.forecast.lm import ADAPTER, training_sets
    from netgpt.models.base import BaseSpec, ModelError, configure_threads, load_base
    from netgpt.models.lora import LoraTaskConfig, train_adapter

    settings = get_settings()
    # The task's budget (models.tasks.TRAIN_BUDGETS) may cap the eval set: the windows cut and the card follow cfg.
    cfg = LoraTaskConfig(task=ADAPTER, steps=steps, batch_size=batch_size, lr=lr, n_train=n_train, n_eval=n_eval,
                         max_minutes=minutes, seed=seed)
    try:
        values = [read_csv(path)[0] for path in series]
        train, evals = training_sets(values, fit_fraction, cfg.n_train, cfg.n_eval, seed)
    except (CsvError, ValueError) as exc:
        fail(str(exc))
    provenance = (f"windows of real traces ({', '.join(p.name for p in series)}; bench/data/README.md): from the first "
                  f"{fit_fraction:.0%} of each, {cfg.n_train} training windows from its first 90% and {cfg.n_eval} "
                  f"eval windows from its last 10% (seeds {seed} and {seed + 1}); nothing after that part read")
    configure_threads()
    log = lambda m: console.print(m, highlight=False)  # noqa: E731
    try:
        model, tokenizer = load_base(BaseSpec(settings.edge_base, settings.cache_dir), log=log)
        result = train_adapter(model, tokenizer, cfg, out or settings.cache_dir / "adapters" / ADAPTER, log=log,
                               data=(train, evals, provenance))
    except ModelError as exc:
        fail(str(exc))
    console.print(f"[green]saved[/] {result['path']}: " + ", ".join(f"{k}={v}" for k, v in result["metrics"].items()),
                  highlight=False)
