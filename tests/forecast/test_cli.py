"""`netgpt forecast backtest`: a table of MAE/RMSE per method and a plot; a bad CSV is one line, no traceback."""
from typer.testing import CliRunner

from netgpt.cli.forecast import app as forecast_app
from netgpt.edge_agent.forecast.data import add_gaps, synthetic_link_trace


def test_backtest_prints_table_and_writes_plot(tmp_path):
    y = add_gaps(synthetic_link_trace(n_days=16, period=24, seed=4), n_gaps=3, seed=2)
    csv = tmp_path / "trace.csv"
    csv.write_text("timestamp,value\n" + "".join(f"{1.7e9 + 3600 * i},{v}\n" for i, v in enumerate(y)))
    plot = tmp_path / "out.png"
    res = CliRunner().invoke(forecast_app, ["backtest", "--csv", str(csv), "--period", "24", "--horizon", "4",
                                            "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    for name in ("seasonal_naive", "persistence", "forecaster", "MAE", "RMSE"):
        assert name in res.output
    assert plot.stat().st_size > 1000


def test_bad_csv_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\nx,y\n")
    for args in (["--csv", str(bad)], ["--csv", str(tmp_path / "missing.csv")]):
        res = CliRunner().invoke(forecast_app, ["backtest", *args, "--period", "24", "--horizon", "4"])
        assert res.exit_code == 1
        assert "error:" in res.output and "Traceback" not in res.output and res.exception.__class__ is SystemExit
