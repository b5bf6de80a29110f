"""edge_lm: the task's serialisation, the seasonal-naive fallback, and how fit_forecaster treats an absent or opt-in LM.

The real edge model is not needed: a stub server stands in for AdapterServer (same `complete` call) where the answer
must be controlled, and a random tiny GPT-2 + untrained LoRA adapter, laid out like the real cache, checks loading.
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from netgpt.core.settings import Settings, get_settings
from netgpt.edge_agent.forecast import forecaster as fc
from netgpt.edge_agent.forecast import lm as fl
from netgpt.edge_agent.forecast.backtesting import DEFAULT_METHODS, METHODS, default_methods
from netgpt.models import tasks
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
    """Settings.cache_dir is an empty folder, edge_lm is not in the defaults, and no LM server is cached."""
    monkeypatch.setenv("NETGPT_CACHE_DIR", str(tmp_path))
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
    stub.text = "no digits at all"
    np.testing.assert_allclose(m.predict(y, 5), naive[:5])
    # beyond max_lm_steps the LM is not asked again
    stub.text, stub.prompts = None, []
    out = m.predict(y, 20)
    assert len(stub.prompts) == 3 and np.isfinite(out).all()
    naive20 = METHODS["seasonal_naive"]().fit(y, PERIOD, 20).predict(y, 20)
    np.testing.assert_allclose(out[12:], naive20[12:])  # one period earlier lies in the history here (12 < 48)


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
    """A random tiny GPT-2 as <cache>/models/edge-default and an untrained LoRA as adapters/forecast: it loads through
    AdapterServer, generates, and whatever noise it writes still gives a finite forecast."""
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
