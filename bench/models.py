"""Benchmark the language models on this machine and print tables.

    python bench/models.py                      # serving: every variant of the edge and cloud defaults, side by side
    python bench/models.py --concurrency 4      # also: 4 OpenAI clients on one cloud service, 1 and 2 llama.cpp slots
    python bench/models.py --training           # also: LoRA training steps/s, adapter size (the torch side)

Serving variants, each measured in its own process (so that peak RSS is its own):
  torch-fp32     transformers `generate`, fp32 (the reference the adapters are trained in)
  torch-bf16     the same model cast to bfloat16
  netgpt         the chosen backend: netgpt.models.llamacpp.LlamaCppServer (our decoding loop on llama.cpp)
  llama.cpp      llama-cpp-python's own `create_completion` on the same GGUF: the speed reference
Per variant: prefill tokens/s (one ~200-token prompt), time to first token, decode tokens/s (median of three prompts,
`--tokens` greedy tokens each), peak RSS, and the task metric of each adapter found for that base (`--adapters`:
name=folder, default: the trained adapters in the cache whose card names that base), on `--examples` generated
held-out examples (models/tasks.py, seed 9100; none of them in any training set, which uses seeds 0 and 1).
Threads: 2 (this machine's cores) for every variant.
"""
from __future__ import annotations

import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# huggingface_hub's own switch (read by the library, not a netgpt setting): never reach for the network here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from netgpt.core.settings import get_settings  # noqa: E402
from netgpt.models import tasks  # noqa: E402
from netgpt.models.backends import gguf_path, open_server  # noqa: E402
from netgpt.models.base import CLOUD_DEFAULT, EDGE_DEFAULT, BaseSpec, load_base  # noqa: E402
from netgpt.models.lora import read_card  # noqa: E402

VARIANTS = ("torch-fp32", "torch-bf16", "netgpt", "llama.cpp")
THREADS = 2
# Prompts whose greedy continuations run the full length on both models (a continuation that ends early leaves too
# few tokens to time): decode speed is the median over two rounds of the three.
PROMPTS = ["The edge node in Lyon reports that the link", "Tell me a long story about a dragon and a knight.",
           "Explain in simple words how traffic engineering moves flows between paths."]
LONG = " ".join(["The controller measures every link each second and forecasts the load of the next hour."] * 12)
EXAMPLE_SEED = 9100


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# --- one variant, in a child process ---------------------------------------------------------------------------------


def _timed_stream(pieces) -> tuple[float, float, int]:
    """(time to first piece, total time, pieces) of an iterator of generated pieces."""
    t0, first, n = time.perf_counter(), None, 0
    for _ in pieces:
        first = first or time.perf_counter() - t0
        n += 1
    return first or 0.0, time.perf_counter() - t0, n


def measure_server(server, tokens: int, adapters: dict[str, Path], n_examples: int) -> dict:
    from netgpt.models.serving import Completion, served_metric

    def run(prompt: str, max_tokens: int) -> tuple[float, float, int]:
        t0, first, final = time.perf_counter(), None, None
        for item in server.stream(prompt, max_tokens=max_tokens):
            if isinstance(item, Completion):
                final = item
            elif first is None:
                first = time.perf_counter() - t0
        return first or 0.0, time.perf_counter() - t0, final.completion_tokens

    run(PROMPTS[0], 8)  # warm-up
    n_long = len(server.tokenizer(LONG, add_special_tokens=False)["input_ids"])
    ttft = statistics.median(run(f"{i}. " + LONG, 1)[0] for i in range(3))  # a new start: nothing cached to reuse
    decode = []
    for prompt in PROMPTS * 2:
        first, total, n = run(prompt, tokens)
        decode.append((n - 1) / max(total - first, 1e-9))
    row = {"prefill_tok_s": n_long / ttft, "ttft_ms": ttft * 1000, "decode_tok_s": statistics.median(decode)}
    for name, path in adapters.items():
        if name not in server.adapters:
            server.load_adapter(name, path)
        card = read_card(path)
        examples = tasks.make_examples(card["task"], n_examples, seed=EXAMPLE_SEED)
        row[f"metric:{name}"] = served_metric(server, name, card["task"], examples)
    if adapters:
        row["switch_ms"] = switch_ms(server, [*adapters, None])
    return row


def switch_ms(server, names: list, rounds: int = 60) -> float:
    """Median time to make another adapter (or none) active: what a request pays before its prompt is evaluated.
    (On llama.cpp a switch also drops the cached prompt prefix, so that request's prompt is evaluated in full.)"""
    hold = server._using if hasattr(server, "_using") else server._slot
    times = []
    for i in range(rounds):
        t0 = time.perf_counter()
        with hold(names[i % len(names)]):
            pass
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def measure_reference(gguf: Path, tokens: int) -> dict:
    """llama-cpp-python's own high-level API: what any user of llama.cpp on these weights gets."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), n_ctx=4096, n_threads=THREADS, n_threads_batch=THREADS, verbose=False)
    n_long = len(llm.tokenize(LONG.encode(), add_bos=False))
    stream = lambda p, n: llm.create_completion(p, max_tokens=n, temperature=0, stream=True)  # noqa: E731
    _timed_stream(stream(PROMPTS[0], 8))
    ttft = []
    for i in range(3):
        llm.reset()  # no prompt cache between measurements
        ttft.append(_timed_stream(stream(f"{i}. " + LONG, 1))[0])
    ttft = statistics.median(ttft)
    decode = []
    for prompt in PROMPTS * 2:
        llm.reset()
        first, total, n = _timed_stream(stream(prompt, tokens))
        decode.append((n - 1) / max(total - first, 1e-9))
    return {"prefill_tok_s": n_long / ttft, "ttft_ms": ttft * 1000, "decode_tok_s": statistics.median(decode)}


def child(variant: str, source: str, tokens: int, adapters_json: str, n_examples: int) -> None:
    import torch

    from netgpt.models.serving import AdapterServer

    cache = get_settings().cache_dir
    adapters = {k: Path(v) for k, v in json.loads(adapters_json).items()}
    torch.set_num_threads(THREADS)
    if variant == "llama.cpp":
        row = measure_reference(gguf_path(source, cache), tokens)
    elif variant == "netgpt":  # exactly what `netgpt cloud serve` and the edge agent run (2 threads on 2 cores)
        row = measure_server(open_server(source, cache, "llamacpp", log=lambda m: None), tokens, adapters, n_examples)
    else:
        model, tokenizer = load_base(BaseSpec(source, cache), log=lambda m: None)
        server = AdapterServer(model, tokenizer)
        if variant == "torch-bf16":  # adapters are checked against the fp32 base they were trained on, then cast
            for name, path in adapters.items():
                server.load_adapter(name, path)
            server.model.to(torch.bfloat16)
        row = measure_server(server, tokens, adapters, n_examples)
    row["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(row), flush=True)


def run_variant(variant: str, source: str, tokens: int, adapters: dict[str, Path], n_examples: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", variant, "--source", source, "--tokens", str(tokens),
                           "--adapters-json", json.dumps({k: str(v) for k, v in adapters.items()}),
                           "--examples", str(n_examples)], capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1][len("RESULT "):])


# --- concurrency: OpenAI clients on one cloud service ----------------------------------------------------------------


def concurrency(source: str, clients: int, requests_each: int, tokens: int, slots_options: list[int]) -> list[dict]:
    import openai
    import uvicorn

    from netgpt.models.cloud_service import create_app

    rows = []
    for backend, slots in [("torch", 1)] + [("llamacpp", s) for s in slots_options]:
        server = open_server(source, get_settings().cache_dir, backend, slots=slots, log=lambda m: None)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        web = uvicorn.Server(uvicorn.Config(create_app(server), host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=web.run, daemon=True).start()
        while not web.started:
            time.sleep(0.05)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=600)
        latencies, out_tokens = [], []

        def user(i: int) -> None:
            for j in range(requests_each):
                t0 = time.perf_counter()
                reply = client.chat.completions.create(
                    model=server.name, max_tokens=tokens, temperature=0,
                    messages=[{"role": "user", "content": PROMPTS[(i + j) % len(PROMPTS)]}])
                latencies.append(time.perf_counter() - t0)
                out_tokens.append(reply.usage.completion_tokens)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=user, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        web.should_exit = True
        q = statistics.quantiles(latencies, n=20)
        rows.append({"backend": backend, "slots": slots, "requests": len(latencies), "tok_s": sum(out_tokens) / wall,
                     "p50_s": statistics.median(latencies), "p95_s": q[18]})
        del server
    return rows


# --- main ------------------------------------------------------------------------------------------------------------


def cached_adapters(source: str) -> dict[str, Path]:
    """Trained adapters in the cache whose card names this base."""
    root = get_settings().cache_dir / "adapters"
    found = {}
    for card_path in sorted(root.glob("*/netgpt-adapter.json")) if root.is_dir() else []:
        if read_card(card_path.parent).get("base") == source:
            found[card_path.parent.name] = card_path.parent
    return found


def main(tokens: int = typer.Option(128, help="Greedy tokens per decode run"),
         examples: int = typer.Option(50, help="Held-out examples per adapter metric"),
         adapters: list[str] = typer.Option([], help="name=folder of an adapter to score (default: cached ones)"),
         concurrency_clients: int = typer.Option(0, "--concurrency", help="Clients on one cloud service (0: skip)"),
         training: bool = typer.Option(False, help="Also measure LoRA training (bench/models_training.py)"),
         child_variant: Optional[str] = typer.Option(None, "--child", hidden=True),
         source: str = typer.Option(CLOUD_DEFAULT, hidden=True),
         adapters_json: str = typer.Option("{}", hidden=True)) -> None:
    if child_variant:
        return child(child_variant, source, tokens, adapters_json, examples)
    console = Console(width=150)
    given = dict(a.split("=", 1) for a in adapters)
    table = Table(title=f"Serving on {os.cpu_count()} CPU cores, {THREADS} threads, batch 1, greedy, {tokens} tokens")
    for col in ("model", "variant", "decode tok/s", "vs llama.cpp", "prefill tok/s", "TTFT ms", "peak RSS MB",
                "adapter switch ms", "adapter metrics"):
        table.add_column(col, justify="right")
    for model, src in (("edge", EDGE_DEFAULT), ("cloud", CLOUD_DEFAULT)):
        scored = {k: Path(v) for k, v in given.items()} or cached_adapters(src)
        rows = {}
        for variant in VARIANTS:
            console.print(f"{model} / {variant} ...", highlight=False)
            rows[variant] = run_variant(variant, src, tokens, {} if variant == "llama.cpp" else scored, examples)
        ref = rows["llama.cpp"].get("decode_tok_s")
        for variant, r in rows.items():
            if "error" in r:
                table.add_row(model, variant, "-", "-", "-", "-", "-", "-", f"failed: {r['error'][:60]}")
                continue
            metrics = ", ".join(f"{k.split(':', 1)[1]} {v:.3f}" for k, v in r.items() if k.startswith("metric:"))
            table.add_row(model, variant, f"{r['decode_tok_s']:.1f}", f"{r['decode_tok_s'] / ref:.2f}x" if ref else "-",
                          f"{r['prefill_tok_s']:.0f}", f"{r['ttft_ms']:.0f}", f"{r['peak_rss_mb']:.0f}",
                          f"{r['switch_ms']:.3f}" if "switch_ms" in r else "-", metrics or "-")
    console.print(table)
    console.print(f"Adapter metrics: accuracy (intent), exact match (complete), MAE in 0..999 units (forecast, lower "
                  f"is better) on {examples} generated examples of seed {EXAMPLE_SEED}.")
    if concurrency_clients:
        rows = concurrency(CLOUD_DEFAULT, concurrency_clients, 3, 64, [1, 2])
        t = Table(title=f"{concurrency_clients} OpenAI clients on one cloud service (3 chat requests each, 64 tokens)")
        for col in ("backend", "slots x threads", "requests", "throughput tok/s", "p50 s", "p95 s"):
            t.add_column(col, justify="right")
        for r in rows:
            threads = THREADS if r["backend"] == "torch" else max(1, (os.cpu_count() or 1) // r["slots"])
            t.add_row(r["backend"], f"{r['slots']} x {threads}", str(r["requests"]), f"{r['tok_s']:.1f}",
                      f"{r['p50_s']:.2f}", f"{r['p95_s']:.2f}")
        console.print(t)
    if training:
        subprocess.run([sys.executable, str(Path(__file__).with_name("models_training.py"))], check=False)


if __name__ == "__main__":
    typer.run(main)
