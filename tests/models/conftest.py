"""Tiny fixture models built in seconds: same code paths as the defaults (BPE tokenizer + GPT-2 / LLaMA folders)."""
from __future__ import annotations

from pathlib import Path

import pytest

from netgpt.models.base import BaseSpec, configure_threads, load_base
from netgpt.models.edge_pretrain import generated_corpus, gpt2_config, train_tokenizer
from netgpt.models.gguf_export import base_gguf
from netgpt.models.llamacpp import LlamaCppServer
from netgpt.models.lora import LoraTaskConfig, train_adapter
from netgpt.models.serving import AdapterServer

# HF_HUB_OFFLINE=1 is set by tests/conftest.py; torch and transformers are imported inside the fixtures that build
# models, so collecting the tests that do not need them stays fast.


@pytest.fixture(scope="session", autouse=True)
def _two_threads():
    configure_threads()  # at most 2, and 1 on a busy shared machine


@pytest.fixture(scope="session")
def tiny_tokenizer():
    tokenizer = train_tokenizer(generated_corpus(n_docs=1500, seed=7), vocab_size=600)
    tokenizer.model_max_length = 128
    return tokenizer


def tiny_model(tokenizer, seed: int, arch: str = "gpt2", layers: int = 2):
    """A randomly initialised model of `layers` blocks with a 128-token context (GPT-2 or LLaMA)."""
    import torch
    from transformers import GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    if arch == "gpt2":
        return GPT2LMHeadModel(gpt2_config(len(tokenizer), n_layer=layers, n_embd=64, n_head=2, n_positions=128))
    return LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                        num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                                        max_position_embeddings=128, bos_token_id=0, eos_token_id=0, pad_token_id=0))


def save_tiny(out: Path, tokenizer, seed: int, arch: str = "gpt2") -> Path:
    """A randomly initialised 2-layer model with a 128-token context, saved as a normal Hugging Face folder."""
    model = tiny_model(tokenizer, seed, arch)
    model.config._name_or_path = out.name
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory, tiny_tokenizer) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-bases")
    return {"gpt2": save_tiny(root / "tiny-gpt2", tiny_tokenizer, seed=0),
            "gpt2-other": save_tiny(root / "tiny-gpt2-other", tiny_tokenizer, seed=1),
            "llama": save_tiny(root / "tiny-llama", tiny_tokenizer, seed=2, arch="llama")}


@pytest.fixture
def make_server(load_tiny, tiny_dirs):
    """A server for a tiny base on either backend; llama.cpp serves its f32 GGUF (converted once per session), so the
    two backends compute the same numbers and must give the same greedy answers."""
    def make(name: str = "gpt2", backend: str = "torch", **kwargs):
        model, tokenizer = load_tiny(name)
        if backend == "torch":
            return AdapterServer(model, tokenizer)
        return LlamaCppServer.from_base(model, tokenizer, tiny_dirs[name], gguf=base_gguf(tiny_dirs[name], "f32"),
                                        **kwargs)
    return make


@pytest.fixture
def load_tiny(tiny_dirs, tmp_path):
    """Load a fresh copy of a tiny base (peft modifies the module it wraps, so tests never share one)."""
    return lambda name="gpt2": load_base(BaseSpec(str(tiny_dirs[name]), tmp_path))


LLAMA_LINEARS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def tiny_lora_config(task: str, **kw):
    # A random tiny base has a random output head, so LoRA needs every projection and a high rate to move the loss.
    defaults = dict(task=task, steps=40, batch_size=8, lr=2e-2, n_train=300, n_eval=24, n_generate=2, max_len=96,
                    target_modules=["c_attn", "c_proj", "c_fc"])
    return LoraTaskConfig(**{**defaults, **kw})


@pytest.fixture(scope="session")
def tiny_adapters(tiny_dirs, tmp_path_factory) -> dict[str, dict]:
    """Adapters for intent and forecast, a few steps each on the tiny GPT-2 (results: path, metrics, card, model),
    and `llama-forecast` on the tiny LLaMA (the cloud's architecture)."""
    root = tmp_path_factory.mktemp("adapters")
    out = {}
    for task in ("intent", "forecast"):
        model, tokenizer = load_base(BaseSpec(str(tiny_dirs["gpt2"]), root))
        result = train_adapter(model, tokenizer, tiny_lora_config(task), root / task, log=lambda m: None,
                               progress=False)
        out[task] = result
    model, tokenizer = load_base(BaseSpec(str(tiny_dirs["llama"]), root))
    out["llama-forecast"] = train_adapter(model, tokenizer, tiny_lora_config("forecast", target_modules=LLAMA_LINEARS),
                                          root / "llama-forecast", log=lambda m: None, progress=False)
    return out


def assert_concurrent_requests_get_their_own_adapter(server, prompt: str) -> None:
    """12 threads asking at once, with adapters mixed: each answer is the one its adapter gives alone."""
    import threading

    names = ["intent", "forecast", None] * 4
    expected = {n: server.complete(prompt, adapter=n, max_tokens=6).text for n in set(names)}
    assert len(set(expected.values())) >= 2  # the adapters answer differently, so a mix-up would show
    got: dict[int, str] = {}

    def ask(i: int, name) -> None:
        got[i] = server.complete(prompt, adapter=name, max_tokens=6).text

    threads = [threading.Thread(target=ask, args=(i, n)) for i, n in enumerate(names)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [got[i] for i in range(len(names))] == [expected[n] for n in names]
