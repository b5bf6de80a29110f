"""edge_lm: the task's serialisation, the seasonal-naive fallback, and how fit_forecaster treats an absent or opt-in LM.

A stub server stands in for the edge LM (same `complete` call) where the answer must be controlled, and a random tiny
GPT-2 + untrained LoRA adapter, laid out like the real cache as the edge base on the torch backend, checks loading; the
last test runs the real edge LM (SmolLM2 on llama.cpp) with the shipped `forecast` adapter, once `make models` has
built and installed them.
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from netgpt.core.settings import Settings, get_settings
from netgpt.edge_agent.forecast import forecaster as fc
from netgpt.edge_agent.forecast import lm as fl
from netgpt.edge_agent.forecast.backtesting import DEFAULT_METHODS, METHODS, default_methods
from netgpt.models import student, tasks
from netgpt.models.base import MARKER, fingerprint
from netgpt.models.edge_pretrain import generated_corpus, gpt2_config, train_tokenizer
from tests.forecast.conftest import PERIOD

# torch, transformers and peft are imported inside the one test that builds a model: the others run without them.


@dataclass
class _Completion:
    text: str


class StubServer:
    """Answers with a fixed text, or with the prompt's last value repeated; records the prompts."""

    def __init__(self, text: str | None = None):
        self.text, self.prompts = text, []

    def complete(self, prompt, adapter=None, max_tokens=64, **kw):
        assert adapter == "forecast"
        self.prompts.append(prompt)
        if self.text is not None:
            return _Completion(self.text)
        last = tasks.parse_series(prompt.split(":", 1)[1])[-1]
        return _Completion(" " + tasks.serialise([last] * tasks.HORIZON))


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """Settings.cache_dir is an empty folder, the edge base is edge-default on the torch backend (a tiny GPT-2 stands
    in for it below), edge_lm is not in the defaults, and no LM server is cached."""
    monkeypatch.setenv("NETGPT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("NETGPT_EDGE_BASE", "edge-default")
    monkeypatch.setenv("NETGPT_SERVING_BACKEND", "torch")
    monkeypatch.delenv("NETGPT_FORECAST_LM", raising=False)
    get_settings.cache_clear()
    fl.SERVERS.clear()
    yield tmp_path
    fl.SERVERS.clear()
    get_settings.cache_clear()  # the next test reads the settings afresh (after monkeypatch restored the environment)


@pytest.fixture
def stub(empty_cache):
    server = StubServer()
    fl.SERVERS.put(empty_cache, server)
    return server


def test_the_methods_table_is_explicit_and_importing_loads_no_model():
    code = ("import sys; import netgpt.edge_agent.forecast as f; from netgpt.edge_agent.forecast import forecaster; "
            "from netgpt.edge_agent.forecast.backtesting import METHODS; "
            "print(sorted(METHODS), f.fit_forecaster is forecaster.fit_forecaster and forecaster.METHODS is METHODS, "
            "sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ("['boosted', 'damped_trend', 'edge_lm', 'gpt4ts', 'patch_linear', 'persistence', 'profile_ridge', 'ridge_lags', "
                   "'seasonal_drift', 'seasonal_naive'] True []")
    assert METHODS["edge_lm"] is fl.EdgeLMForecast and DEFAULT_METHODS == tuple(
        m for m in METHODS if m not in ("edge_lm", "ridge_lags", "gpt4ts", "patch_linear"))


def test_prompt_is_the_task_encoding_and_round_trips():
    window = np.linspace(10e6, 40e6, tasks.HISTORY)
    ints, mid, unit = fl.scale_window(window)
    assert min(ints) == 225 and max(ints) == 575  # the window fills CENTRE +- HALF_SPAN
    prompt = fl.make_prompt(ints)
    example = tasks.forecast_examples(1, seed=3)[0]
    assert prompt.startswith("series: ") and prompt.endswith(" ->")
    assert len(prompt) == len(example.prompt)  # 16 values of 3 digits, same separators as training
    assert tasks.parse_series(prompt.split(":", 1)[1]) == ints
    back = fl.unscale(ints, mid, unit)
    assert np.max(np.abs(back - window)) <= unit / 2 + 1e-6  # rounding is the only loss
    # a flat window is not a division by zero
    ints, mid, unit = fl.scale_window(np.full(tasks.HISTORY, 5.0))
    assert ints == [400] * tasks.HISTORY and unit > 0


def test_parse_completion_reads_the_first_line_only():
    assert fl.parse_completion(" 1 2 3 , 4 5 6 , 7 8 9 , 0 1 2 , 3 4 5\nseries: 9 9 9") == [123, 456, 789, 12]
    assert fl.parse_completion("") == []


def test_predict_unscales_the_answer(stub):
    y = np.arange(100, dtype=float) * 1e6
    stub.text = " " + tasks.serialise([575, 600, 625, 650])  # the window's max, then +25 units per step
    m = METHODS["edge_lm"]().fit(y, PERIOD, 4)
    _, mid, unit = fl.scale_window(y[-tasks.HISTORY:])
    out = m.predict(y, 4)
    np.testing.assert_allclose(out, mid + (np.array([575, 600, 625, 650]) - 400) * unit)
    assert out[0] == pytest.approx(y[-1], rel=1e-3) and m.unparsed == 0
    assert stub.prompts[0] == fl.make_prompt(fl.scale_window(y[-tasks.HISTORY:])[0])


def test_unparsable_steps_fall_back_to_seasonal_naive(stub, diurnal):
    y = diurnal[:500]
    stub.text = " 1 2 3 , 4 5 6 , garbage"  # two values, then nothing usable
    m = METHODS["edge_lm"]().fit(y, PERIOD, 12)
    out = m.predict(y, 12)
    assert np.isfinite(out).all()
    naive = METHODS["seasonal_naive"]().fit(y, PERIOD, 12).predict(y, 12)
    np.testing.assert_allclose(out[2:4], naive[2:4])  # steps 3 and 4 of each round: one period earlier
    assert not np.allclose(out[:2], naive[:2])
    assert len(stub.prompts) == 3 and m.unparsed == 6  # 3 rounds of 4, 2 missing each
    stub.text = "no digits at all"  # the same prompts answered otherwise: a new fit, whose memory of answers is empty
    m = METHODS["edge_lm"]().fit(y, PERIOD, 12)
    np.testing.assert_allclose(m.predict(y, 5), naive[:5])
    # beyond max_lm_steps the LM is not asked again
    stub.text, stub.prompts = None, []
    m = METHODS["edge_lm"]().fit(y, PERIOD, 12)
    out = m.predict(y, 20)
    assert len(stub.prompts) == 3 and np.isfinite(out).all()
    naive20 = METHODS["seasonal_naive"]().fit(y, PERIOD, 20).predict(y, 20)
    np.testing.assert_allclose(out[12:], naive20[12:])  # one period earlier lies in the history here (12 < 48)


def test_answers_are_kept_per_prompt_and_errors_are_retried(stub, diurnal):
    """The forecaster forecasts from every origin of its calibration window at each predict: a window already asked
    is answered from memory, so the next forecast (one step later) asks the LM for the newest origin only."""
    y = diurnal[:600]
    m = METHODS["edge_lm"]().fit(y[:400], PERIOD, 12)
    first = m.predict_many(y, np.arange(400, 450), 12)
    asked = len(stub.prompts)
    assert asked == 50 * 3
    later = m.predict_many(y, np.arange(401, 451), 12)
    np.testing.assert_array_equal(later[:-1], first[1:])
    assert len(stub.prompts) == asked + 3
    calls = []

    class Failing:
        def complete(self, prompt, adapter=None, max_tokens=64, **kw):
            calls.append(prompt)
            raise RuntimeError("slot busy")

    m.server = Failing()
    m._answer.cache_clear()
    m.unparsed = 0
    m.predict(y[:460], 4)
    m.predict(y[:460], 4)
    assert len(calls) == 2 and m.unparsed == 8  # not kept: asked again, and seasonal naive both times


def test_training_windows_are_the_prompts_predict_sends_and_eval_lies_apart(diurnal):
    """netgpt forecast train-lm's data: every example is the prompt edge_lm sends for a window of the series' fitted
    part (the first 75%), with the next 4 values scaled alike as its target; training windows from the first 90% of
    that part, eval windows from its last 10%; windows with a gap are not used."""
    y = diurnal[:1000].copy()
    y[100:110] = np.nan
    train, evals = fl.training_sets([y], 0.75, 300, 20, seed=3)
    fitted, cut, width = 750, 675, tasks.HISTORY + tasks.HORIZON

    def examples_at(starts):
        out = {}
        for s in starts:
            ints, mid, unit = fl.scale_window(y[s:s + tasks.HISTORY])
            target = np.clip(np.rint(fl.CENTRE + (y[s + tasks.HISTORY:s + width] - mid) / unit), 0, 999).astype(int)
            out[fl.make_prompt(ints)] = " " + tasks.serialise(target.tolist())
        return out

    allowed_train = examples_at(s for s in range(0, cut - width + 1) if np.isfinite(y[s:s + width]).all())
    allowed_eval = examples_at(range(cut, fitted - width + 1))
    assert len({e.prompt for e in train}) == 300 and len(evals) == 20
    assert all(allowed_train.get(e.prompt) == e.target for e in train)
    assert all(allowed_eval.get(e.prompt) == e.target for e in evals)
    assert "nan" not in " ".join(e.prompt for e in train)
    with pytest.raises(ValueError, match="windows"):
        fl.training_sets([y], 0.75, 2000, 20)


def test_missing_model_leaves_fit_forecaster_unchanged(empty_cache, diurnal, caplog):
    y = diurnal[: 14 * PERIOD]
    reason = METHODS["edge_lm"].unavailable()
    assert reason and "edge-default" in reason
    before = fc.fit_forecaster(y, PERIOD, max_horizon=6, methods=DEFAULT_METHODS)
    with caplog.at_level("WARNING"):
        asked = fc.fit_forecaster(y, PERIOD, max_horizon=6, methods=DEFAULT_METHODS + ("edge_lm",))
    assert "leaving out edge_lm" in caplog.text
    assert set(asked.backtest_mae) == set(before.backtest_mae) and "edge_lm" not in asked.backtest_mae
    np.testing.assert_allclose(asked.predict(y, 6), before.predict(y, 6))
    assert asked.residuals.shape == before.residuals.shape  # every origin, no subsampling without the LM


def test_lm_is_opt_in_and_backtested_on_few_origins(stub, diurnal, monkeypatch):
    y = diurnal[: 10 * PERIOD]
    plain = fc.fit_forecaster(y, PERIOD, max_horizon=4)
    assert "edge_lm" not in plain.backtest_mae and not stub.prompts  # not asked unless enabled
    assert default_methods(Settings(forecast_lm=True)) == DEFAULT_METHODS + ("edge_lm",)
    monkeypatch.setenv("NETGPT_FORECAST_LM", "1")  # through Settings.forecast_lm, as a deployment would set it
    get_settings.cache_clear()
    f = fc.fit_forecaster(y, PERIOD, max_horizon=4)
    assert "edge_lm" in f.backtest_mae
    assert len(f.residuals) <= fl.EdgeLMForecast.max_backtest_origins < len(plain.residuals)
    assert len(stub.prompts) <= fl.EdgeLMForecast.max_backtest_origins + 1  # 1 call per origin at h <= 4 (+ predict)
    assert np.isfinite(f.predict(y, 8)).all()


def test_loads_a_real_adapter_from_the_cache_layout(empty_cache, diurnal):
    """A random tiny GPT-2 as <cache>/models/edge-default (the edge base here) and an untrained LoRA as
    adapters/forecast: it loads through the torch backend, generates, and whatever noise it writes still gives a
    finite forecast."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import GPT2LMHeadModel

    base_dir = empty_cache / "models" / "edge-default"
    tokenizer = train_tokenizer(generated_corpus(n_docs=300, seed=7), vocab_size=300)
    tokenizer.model_max_length = 256
    torch.manual_seed(0)
    model = GPT2LMHeadModel(gpt2_config(len(tokenizer), n_layer=1, n_embd=32, n_head=2, n_positions=256))
    model.save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)
    (base_dir / MARKER).write_text("{}")
    fp = fingerprint(model)
    peft_model = get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM, r=2, target_modules=["c_attn"],
                                                  fan_in_fan_out=True))
    adapter_dir = empty_cache / "adapters" / "forecast"
    peft_model.save_pretrained(adapter_dir)
    (adapter_dir / "netgpt-adapter.json").write_text(json.dumps({"task": "forecast", "base": "edge-default",
                                                                  "base_fingerprint": fp}))
    assert METHODS["edge_lm"].unavailable() is None
    y = diurnal[:300]
    m = METHODS["edge_lm"]().fit(y, PERIOD, 6)
    out = m.predict(y, 6)
    assert out.shape == (6,) and np.isfinite(out).all()
    assert "forecast" in m.server.adapters


def test_base_without_adapter_is_unavailable(empty_cache):
    base_dir = empty_cache / "models" / "edge-default"
    base_dir.mkdir(parents=True)
    (base_dir / MARKER).write_text("{}")
    reason = METHODS["edge_lm"].unavailable()
    assert reason and "forecast" in reason and "adapter" in reason


def test_the_method_runs_on_the_configured_edge_base(empty_cache, monkeypatch):
    """The edge LM is Settings.edge_base: the default one, SmolLM2 ("cloud-default"), not built in an empty cache, is
    named in the reason; a task student as the edge base takes no adapter."""
    monkeypatch.setenv("NETGPT_EDGE_BASE", "cloud-default")
    get_settings.cache_clear()
    reason = METHODS["edge_lm"].unavailable()
    assert "cloud-default is not built" in reason
    fl.SERVERS.clear()
    pupil = empty_cache / "models" / "complete-student"
    pupil.mkdir(parents=True)
    (pupil / student.CARD).write_text(json.dumps({"task": "complete"}))
    monkeypatch.setenv("NETGPT_EDGE_BASE", str(pupil))
    get_settings.cache_clear()
    reason = METHODS["edge_lm"].unavailable()
    assert "task student" in reason and "forecast" in reason


REAL_CACHE = Settings().cache_dir  # the environment's, read at import (the fixtures above change it per test)


def _real_edge_lm_installed() -> bool:
    card = REAL_CACHE / "adapters" / "forecast" / "netgpt-adapter.json"
    return (REAL_CACHE / "models" / "cloud-default" / MARKER).is_file() and card.is_file() and \
        json.loads(card.read_text()).get("base") == "cloud-default"


@pytest.mark.slow
@pytest.mark.skipif(not _real_edge_lm_installed(), reason="SmolLM2 and its `forecast` adapter are not installed "
                    "(make models)")
def test_the_real_edge_lm_forecasts_real_traffic(monkeypatch):
    """SmolLM2-135M on llama.cpp with the shipped `forecast` adapter, on windows of the UK trace's first weeks: every
    step the method asks of the LM is parsed from its answer (none falls back to seasonal naive), and the forecasts
    differ from repeating the last value (the no-LM ablation of bench/forecast.py)."""
    from netgpt.edge_agent.forecast.data import read_csv

    monkeypatch.setenv("NETGPT_EDGE_BASE", "cloud-default")
    monkeypatch.setenv("NETGPT_SERVING_BACKEND", "llamacpp")
    get_settings.cache_clear()
    servers = fl.ServerCache()
    try:
        assert fl.EdgeLMForecast.unavailable(REAL_CACHE, servers) is None
        y = read_csv(Path(__file__).resolve().parents[2] / "bench" / "data" / "isp_uk_academic_5min.csv")[0]
        m = fl.EdgeLMForecast(cache_dir=REAL_CACHE, servers=servers).fit(y[:4000], 288, 12)
        origins = np.arange(3000, 4000, 250)
        out = m.predict_many(y, origins, 12)
        assert out.shape == (len(origins), 12) and np.isfinite(out).all()
        assert m.unparsed == 0
        assert not np.allclose(out, y[origins][:, None])
    finally:
        servers.clear()
        get_settings.cache_clear()
