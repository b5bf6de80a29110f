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


def test_train_lm_refuses_bad_input_before_loading_a_model(tmp_path, monkeypatch):
    """`netgpt forecast train-lm`: a missing or unusable trace, a fraction out of range or a trace too short for the
    windows asked is one line, and nothing is loaded or written (the cache stays empty)."""
    monkeypatch.setenv("NETGPT_CACHE_DIR", str(tmp_path / "cache"))
    short = tmp_path / "short.csv"
    short.write_text("value\n" + "".join(f"{v}\n" for v in range(100)))
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\nx,y\n")
    cases = [(["--series", str(tmp_path / "missing.csv")], "cannot read"), (["--series", str(bad)], "no value column"),
             (["--series", str(short), "--fit-fraction", "0"], "fit_fraction"),
             (["--series", str(short)], "windows of 20 finite values")]
    for args, message in cases:
        res = CliRunner().invoke(forecast_app, ["train-lm", *args])
        assert res.exit_code == 1, res.output
        assert "error:" in res.output and message in res.output and "Traceback" not in res.output
    assert not (tmp_path / "cache").exists()
