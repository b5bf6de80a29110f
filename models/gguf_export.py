"""Hugging Face checkpoints and peft adapters -> GGUF files for the llama.cpp backend, with llama.cpp's own converters.

The converters (`convert_hf_to_gguf.py`, `convert_lora_to_gguf.py` with their `conversion/` and `gguf-py/` packages) come
from the llama-cpp-python source distribution, the same one scripts/setup.sh compiles the backend from; setup copies
them to <venv>/share/llama.cpp. They run in a child process (python -m netgpt.models.gguf_export ...), so their newer
`gguf` package never meets the one transformers uses in this process.

Three things are added around them: transformers 5 configs lack GPT-2's `n_ctx` (the converter reads it; it is
n_positions); a peft LoRA of GPT-2's Conv1D layers is already (out, in), so the converter's Conv1D transpose is undone
for it; and a byte-level BPE tokenizer the converter does not know by its hash (the edge GPT-2
trained here, models/edge_pretrain.py, pre-tokenises exactly as GPT-2 does) is written with GPT-2's pre-tokenizer
instead of being refused. A tokenizer of another family would need its own entry; the conversion log says which.

Outputs are cached next to their inputs and rebuilt when an input file is newer: a base as `<folder>/model-<type>.gguf`,
an adapter as `<adapter>/adapter-<type>.gguf`.
"""
from __future__ import annotations

import logging
import os
import runpy
import subprocess
import sys
from pathlib import Path

from netgpt.models.base import ModelError

CONVERTERS = Path(sys.prefix) / "share" / "llama.cpp"
log = logging.getLogger(__name__)


def converters_dir() -> Path:
    if not (CONVERTERS / "convert_hf_to_gguf.py").is_file():
        raise ModelError(f"llama.cpp's converters are not installed in {CONVERTERS}: run scripts/setup.sh")
    return CONVERTERS


def _stale(out: Path, inputs: list[Path]) -> bool:
    return not out.is_file() or any(p.stat().st_mtime > out.stat().st_mtime for p in inputs if p.is_file())


def _convert(kind: str, args: list[str], out: Path, what: str) -> Path:
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")  # agents starting together may convert at once
    done = subprocess.run([sys.executable, "-m", "netgpt.models.gguf_export", kind, *args, "--outfile", str(tmp)],
                          capture_output=True, text=True)
    if done.returncode != 0 or not tmp.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        tmp.unlink(missing_ok=True)
        raise ModelError(f"converting {what} to GGUF failed: {tail[0]}")
    tmp.replace(out)  # only a complete file gets the final name (atomic; the last of equal files wins)
    return out


# Types llama.cpp's own quantizer makes from an f16 GGUF (the converter writes only f32, f16, bf16 and q8_0).
QUANTIZED = ("q4_0", "q4_1", "q5_0", "q5_1")


def base_gguf(model_dir: Path, outtype: str = "q8_0") -> Path:
    """The GGUF of a Hugging Face checkpoint folder, converted once (q8_0: a quarter of fp32's bytes per token; a type
    of QUANTIZED: converted to an f16 file of this process's own, quantized by llama.cpp, the f16 file removed, so
    that processes starting together never read another's half-written or removed file)."""
    model_dir = Path(model_dir)
    out = model_dir / f"model-{outtype}.gguf"
    weights = sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin")) + [model_dir / "config.json"]
    if outtype in QUANTIZED:
        if _stale(out, weights):
            log.info("converting %s to GGUF (f16, then %s)", model_dir, outtype)
            f16 = _convert("hf", [str(model_dir), "--outtype", "f16"], model_dir / f"model-f16.{os.getpid()}.gguf",
                           str(model_dir))
            try:
                _quantize(f16, out, outtype)
            finally:
                f16.unlink(missing_ok=True)
        return out
    if _stale(out, weights):
        log.info("converting %s to GGUF (%s)", model_dir, outtype)
        _convert("hf", [str(model_dir), "--outtype", outtype], out, str(model_dir))
    return out


def _quantize(src: Path, out: Path, outtype: str) -> None:
    import llama_cpp  # the backend's shared library: loaded only when a file is quantized

    log.info("quantizing %s to %s", src, outtype)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{outtype.upper()}")
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    if llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), params) != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise ModelError(f"quantizing {src} to {outtype} failed")
    tmp.replace(out)


def adapter_gguf(adapter_dir: Path, base_dir: Path) -> Path:
    """The GGUF LoRA of a peft adapter folder (f32: adapters are small, and exact), converted once."""
    adapter_dir = Path(adapter_dir)
    out = adapter_dir / "adapter-f32.gguf"
    if _stale(out, [*adapter_dir.glob("adapter_model.*"), adapter_dir / "adapter_config.json"]):
        log.info("converting adapter %s to GGUF", adapter_dir)
        _convert("lora", [str(adapter_dir), "--base", str(base_dir), "--outtype", "f32"], out, str(adapter_dir))
    return out


def _run_converter(kind: str, argv: list[str]) -> None:
    """In the child process: put the converters first on the path, then run one of them as its own main()."""
    root = converters_dir()
    sys.path[:0] = [str(root), str(root / "gguf-py")]
    from conversion import base as conversion_base  # noqa: E402  (only importable once the path is set)

    known = conversion_base.TextModel.get_vocab_base_pre

    def vocab_base_pre(self, tokenizer) -> str:
        try:
            return known(self, tokenizer)
        except NotImplementedError:
            pre = getattr(getattr(tokenizer, "backend_tokenizer", None), "pre_tokenizer", None)
            if type(pre).__name__ == "ByteLevel":  # GPT-2's own pre-tokenisation, whatever the merges
                logging.warning("unrecognised byte-level BPE tokenizer: written with GPT-2's pre-tokenizer")
                return "gpt-2"
            raise

    conversion_base.TextModel.get_vocab_base_pre = vocab_base_pre

    load_hparams = conversion_base.ModelBase.load_hparams

    def hparams_with_n_ctx(dir_model, *args, **kwargs):
        # transformers 5 no longer writes GPT-2's `n_ctx` (it equals n_positions); the GPT-2 converter reads it
        hparams = load_hparams(dir_model, *args, **kwargs)
        if "n_positions" in hparams:
            hparams.setdefault("n_ctx", hparams["n_positions"])
        return hparams

    conversion_base.ModelBase.load_hparams = staticmethod(hparams_with_n_ctx)
    from conversion import gpt2  # noqa: E402

    gpt2_tensors = gpt2.GPT2Model.modify_tensors
    conv1d = (".c_attn.weight", ".c_proj.weight", ".c_fc.weight")

    def gpt2_lora_tensors(self, data_torch, name, bid):
        # GPT-2's Conv1D weights are stored (in, out) and the converter transposes them; a peft LoRA of a Conv1D is
        # already B @ A = (out, in), so the converter's transpose is undone here for LoRA tensors only
        if type(data_torch).__name__ == "LoraTorchTensor" and name.endswith(conv1d):
            data_torch = data_torch.transpose(1, 0)
        yield from gpt2_tensors(self, data_torch, name, bid)

    gpt2.GPT2Model.modify_tensors = gpt2_lora_tensors
    script = root / ("convert_hf_to_gguf.py" if kind == "hf" else "convert_lora_to_gguf.py")
    sys.argv = [str(script), *argv]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    _run_converter(sys.argv[1], sys.argv[2:])
