"""gpt4ts (patches -> first LM layers with LoRA -> linear head) and its no-LM ablation patch_linear.

A random tiny LLaMA, laid out like the cache's cloud-default folder, stands in for SmolLM2-135M (same architecture
class, so the same decoder layers, rotary embeddings and LoRA targets); the real model is used by one slow test only.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from netgpt.edge_agent.forecast import forecaster as fc
from netgpt.edge_agent.forecast import gpt4ts as g
from netgpt.edge_agent.forecast.backtesting import DEFAULT_METHODS, METHODS
from netgpt.models.base import MARKER

PERIOD, H = 24, 6


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    """A cache folder with a random 2-layer LLaMA (hidden 32) as models/cloud-default."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("cache")
    out = root / "models" / g.BASE
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=128)
    LlamaForCausalLM(cfg).save_pretrained(out)
    (out / MARKER).write_text(json.dumps({"source": g.BASE}))
    # a tokenizer is what load_base also reads: the tiny model borrows the real one when it is built, else a stub
    from transformers import PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>")),
                                  unk_token="<unk>", eos_token="<unk>")
    tok.save_pretrained(out)
    yield root
    g.forget_lm()


def periodic(n: int, seed: int = 0) -> np.ndarray:
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return 100 + 40 * np.sin(2 * np.pi * t / PERIOD) + 15 * np.sin(4 * np.pi * t / PERIOD + 1) + rng.normal(0, 2, n)


def tiny(cache, **kw) -> g.GPT4TSConfig:
    base = dict(context=2 * PERIOD, patch_len=8, stride=8, n_layers=2, batch_size=16, lr=3e-3, max_steps=150,
                train_seconds=30, eval_every=50, val_windows=64, threads=1, cache_dir=cache, ablation_hidden=32)
    base.update(kw)
    return g.GPT4TSConfig(**base)


def test_shapes_and_contract(tiny_cache):
    y = periodic(20 * PERIOD)
    m = g.GPT4TS(tiny(tiny_cache, max_steps=5)).fit(y[:15 * PERIOD], PERIOD, H)
    assert m.min_history == 2 * PERIOD and m.net.n_patches == g.n_patches(2 * PERIOD, 8, 8) == 7
    one = m.predict(y[: 16 * PERIOD], H)
    assert one.shape == (H,) and np.isfinite(one).all()
    many = m.predict_many(y, np.array([16 * PERIOD - 1, 17 * PERIOD, 18 * PERIOD]), 3)
    assert many.shape == (3, 3)
    assert np.allclose(many[0], m.predict(y[: 16 * PERIOD], 3), atol=1e-4)  # only y[:origin + 1] is read
    with pytest.raises(ValueError):
        m.predict(y, H + 1)
    assert m.steps_done == 5 and m.history


def test_learns_a_periodic_series_better_than_untrained(tiny_cache):
    y = periodic(30 * PERIOD, seed=1)
    split = 22 * PERIOD
    origins = np.arange(split - 1, len(y) - H, 5)
    actual = y[origins[:, None] + np.arange(1, H + 1)]
    untrained = g.GPT4TS(tiny(tiny_cache, max_steps=0)).fit(y[:split], PERIOD, H)
    trained = g.GPT4TS(tiny(tiny_cache)).fit(y[:split], PERIOD, H)
    mae_u = np.abs(untrained.predict_many(y, origins, H) - actual).mean()
    mae_t = np.abs(trained.predict_many(y, origins, H) - actual).mean()
    print(f"tiny gpt4ts MAE: untrained {mae_u:.2f}, trained {mae_t:.2f} ({trained.steps_done} steps)")
    assert mae_t < 0.5 * mae_u
    assert mae_t < np.abs(y[origins][:, None] - actual).mean()  # and better than persistence on a clean sine


def test_lm_layers_are_frozen_lora_and_norms_train(tiny_cache):
    import torch
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer

    m = g.GPT4TS(tiny(tiny_cache, max_steps=0)).fit(periodic(10 * PERIOD), PERIOD, H)
    layers = [mod for mod in m.net.modules() if isinstance(mod, LlamaDecoderLayer)]
    assert len(layers) == 2
    names = {n for n, p in m.net.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in names) and any("layernorm" in n for n in names)
    frozen = [n for n, p in m.net.named_parameters() if not p.requires_grad]
    assert frozen and all(".base_layer." in n or "mlp" in n for n in frozen)
    lm = g.load_lm(tiny(tiny_cache))
    before = lm.model.layers[0].mlp.up_proj.weight.detach().clone()
    trained = g.GPT4TS(tiny(tiny_cache, max_steps=20)).fit(periodic(10 * PERIOD), PERIOD, H)
    assert torch.equal(trained.net.layers[0].mlp.up_proj.weight, before)  # frozen, and the cached LM is untouched
    assert torch.equal(lm.model.layers[0].mlp.up_proj.weight, before)


def test_ablation_is_lm_free(tiny_cache, monkeypatch):
    def no_lm(cfg):
        raise AssertionError("patch_linear must not load an LM")

    monkeypatch.setattr(g, "load_lm", no_lm)
    y = periodic(20 * PERIOD)
    m = g.PatchLinear(tiny(tiny_cache, max_steps=30)).fit(y[:15 * PERIOD], PERIOD, H)
    assert len(m.net.layers) == 0 and m.net.rotary is None
    kinds = {type(mod).__name__ for mod in m.net.modules()}
    assert kinds <= {"PatchForecaster", "ModuleList", "Linear", "LayerNorm", "Dropout"}, kinds
    assert m.predict(y, H).shape == (H,)
    assert g.PatchLinear.unavailable() is None
    with_lm = g.GPT4TS(tiny(tiny_cache, max_steps=0))
    assert with_lm.cfg.use_lm and not m.cfg.use_lm


def test_registered_opt_in_and_unavailable_without_a_base(tmp_path, monkeypatch):
    assert METHODS["gpt4ts"] is g.GPT4TS and METHODS["patch_linear"] is g.PatchLinear
    assert "gpt4ts" not in DEFAULT_METHODS and "patch_linear" not in DEFAULT_METHODS
    monkeypatch.setattr(g.GPT4TS, "config", g.GPT4TSConfig(cache_dir=tmp_path))
    assert "no built" in g.GPT4TS.unavailable()


def test_fit_forecaster_can_use_it(tiny_cache, monkeypatch):
    monkeypatch.setattr(g.GPT4TS, "config", tiny(tiny_cache, max_steps=30))
    y = periodic(16 * PERIOD)
    f = fc.fit_forecaster(y, PERIOD, max_horizon=H, methods=("gpt4ts",), validation=3 * PERIOD)
    assert "gpt4ts" in f.backtest_mae
    assert np.isfinite(f.predict(y, H)).all()


@pytest.mark.slow
def test_real_smollm2_layers():
    cfg = g.GPT4TSConfig(n_layers=1, max_steps=2, eval_every=1, val_windows=8, threads=1, context=64)
    if g.GPT4TS.unavailable():
        pytest.skip(g.GPT4TS.unavailable())
    y = periodic(12 * PERIOD)
    m = g.GPT4TS(cfg).fit(y, PERIOD, H)
    assert m.net.layers[0].self_attn.q_proj.base_layer.weight.shape == (576, 576)
    assert m.predict(y, H).shape == (H,)
