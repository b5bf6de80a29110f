"""The torch side of the language models: training. (Serving speed is bench/models.py.)

    python bench/models_training.py [--tokens 128] [--lora-steps 20] [--cloud-lora/--no-cloud-lora]

Measures: greedy generation tokens/s of the edge and cloud defaults in torch (KV cache, batch 1), LoRA training steps/s on
each, adapter size on disk, adapter switch time in an AdapterServer with two adapters, and the process's peak RSS
after each stage. Builds the defaults first if they are not cached (`netgpt models prepare`). Torch threads: see
netgpt.models.base.configure_threads (Settings.torch_threads: NETGPT_TORCH_THREADS=2 forces two).

torch is imported where it is used, so that --help answers at once.
"""
from __future__ import annotations

import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# huggingface_hub's own switch (read by the library, not a netgpt setting): never reach for the network here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from netgpt.core.settings import get_settings  # noqa: E402
from netgpt.models.base import BaseSpec, configure_threads, load_base  # noqa: E402
from netgpt.models.lora import LoraTaskConfig, train_adapter  # noqa: E402
from netgpt.models.serving import AdapterServer  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def tokens_per_s(model, tokenizer, n_tokens: int) -> float:
    import torch

    ids = tokenizer("The edge node in Lyon reports that the link", return_tensors="pt")
    kw = dict(do_sample=False, pad_token_id=tokenizer.pad_token_id)
    with torch.no_grad():
        model.generate(**ids, max_new_tokens=8, min_new_tokens=8, **kw)  # warm-up
        t0 = time.perf_counter()
        out = model.generate(**ids, max_new_tokens=n_tokens, min_new_tokens=n_tokens, **kw)
        elapsed = time.perf_counter() - t0
    return (out.shape[1] - ids["input_ids"].shape[1]) / elapsed


def switch_ms(server, names: list[str], rounds: int = 50) -> float:
    """Median time of set_adapter between two loaded adapters (what a request pays to change adapter)."""
    times = []
    for i in range(rounds):
        t0 = time.perf_counter()
        with server._using(names[i % 2]):
            pass
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench_base(name: str, source: str, cache: Path, work: Path, n_tokens: int, lora_steps: int, batch: int,
               console: Console) -> dict:
    t0 = time.perf_counter()
    model, tokenizer = load_base(BaseSpec(source, cache), log=lambda m: console.print(m, highlight=False))
    row = {"model": name, "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
           "load_s": time.perf_counter() - t0}
    row["gen_threads"] = configure_threads(row["params_m"])
    row["tok_s"] = tokens_per_s(model, tokenizer, n_tokens)
    row["rss_serve_mb"] = peak_rss_mb()
    row["train_threads"] = configure_threads()
    console.print(f"{name}: {row['tok_s']:.0f} tokens/s", highlight=False)
    paths, rates = [], []
    for task in ("intent", "forecast"):
        if lora_steps <= 0:
            break
        base, tok = load_base(BaseSpec(source, cache), log=lambda m: None)
        cfg = LoraTaskConfig(task=task, steps=lora_steps, batch_size=batch, n_train=400, n_eval=32, n_generate=0)
        result = train_adapter(base, tok, cfg, work / f"{name}-{task}", log=lambda m: None, progress=False)
        rates.append(result["metrics"]["train_steps_per_s"])
        paths.append(result["path"])
        del base
    if paths:
        server = AdapterServer(model, tokenizer)
        for p in paths:
            server.load_adapter(p.name, p)
        row["switch_ms"] = switch_ms(server, [p.name for p in paths])
        row["adapter_mb"] = (paths[0] / "adapter_model.safetensors").stat().st_size / 1e6
        row["train_steps_s"] = statistics.mean(rates)
        row["train_batch"] = batch
    row["peak_rss_mb"] = peak_rss_mb()
    return row


def main(tokens: int = typer.Option(128, help="Tokens generated per speed run"),
         lora_steps: int = typer.Option(20, help="LoRA steps per adapter (2 adapters per base); 0 skips LoRA"),
         cloud_lora: bool = typer.Option(True, help="Also train LoRA on the cloud model (slow on CPU)"),
         edge: str = typer.Option("edge-default"), cloud: str = typer.Option("cloud-default")) -> None:
    console = Console(width=140)
    cache = get_settings().cache_dir
    rows = []
    with tempfile.TemporaryDirectory(prefix="netgpt-bench-") as work:
        rows.append(bench_base("edge", edge, cache, Path(work), tokens, lora_steps, 16, console))
        rows.append(bench_base("cloud", cloud, cache, Path(work), tokens // 2, lora_steps if cloud_lora else 0, 4,
                               console))
    table = Table(title=f"NetGPT models on {os.cpu_count()} CPU cores (torch threads: netgpt.models.base.configure_threads)")
    for col in ("model", "params M", "load s", "gen tok/s (threads)", "LoRA steps/s (batch, threads)", "adapter MB",
                "switch ms", "peak RSS MB: serving / +LoRA"):
        table.add_column(col, justify="right")
    for r in rows:
        lora = f"{r['train_steps_s']:.2f} ({r['train_batch']}, {r['train_threads']})" if "train_steps_s" in r else "-"
        table.add_row(r["model"], f"{r['params_m']:.1f}", f"{r['load_s']:.1f}",
                      f"{r['tok_s']:.0f} ({r['gen_threads']})", lora,
                      f"{r['adapter_mb']:.2f}" if "adapter_mb" in r else "-",
                      f"{r['switch_ms']:.2f}" if "switch_ms" in r else "-",
                      f"{r['rss_serve_mb']:.0f} / {r['peak_rss_mb']:.0f}")
    console.print(table)
    console.print("Peak RSS is the process's high-water mark, so the cloud row includes the edge run; '+LoRA' is after "
                  "training two adapters (each on a fresh copy of the base) and loading both into one server.")


if __name__ == "__main__":
    typer.run(main)
