"""`netgpt models ...` and `netgpt cloud ...` commands. Heavy imports (torch, transformers) stay inside the commands."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from models.base import CLOUD_DEFAULT, EDGE_DEFAULT

app = typer.Typer(help="Build, fine-tune and inspect the language models.", no_args_is_help=True)
cloud_app = typer.Typer(help="The cloud LLM service (OpenAI API).", no_args_is_help=True)
console = Console()


def fail(message: str, code: int = 1) -> None:
    """One line on stderr, no traceback."""
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _settings():
    from netgpt.settings import get_settings

    return get_settings()


def _threads() -> None:
    from models.base import configure_threads

    configure_threads()


def _base_source(base: Optional[str], role: str) -> str:
    """--base wins; otherwise the settings (NETGPT_EDGE_BASE / NETGPT_CLOUD_BASE), which default to the offline ones."""
    if base:
        return base
    s = _settings()
    return getattr(s, f"{role}_base", EDGE_DEFAULT if role == "edge" else CLOUD_DEFAULT)


@app.command()
def prepare(edge_steps: int = typer.Option(1000, help="Pre-training steps for the edge GPT-2 (batch 8 x 128 tokens)"),
            max_minutes: float = typer.Option(9.0, help="Wall-clock cap for the edge pre-training"),
            only: Optional[str] = typer.Option(None, help="Build only 'edge' or 'cloud'")) -> None:
    """Build the offline defaults once: convert SmolLM2 from the GGUF package, pre-train the edge GPT-2. Idempotent."""
    from models.base import MARKER, ModelError, ensure_default, models_dir

    _threads()
    cache = _settings().cache_dir
    wanted = {"edge": [EDGE_DEFAULT], "cloud": [CLOUD_DEFAULT], None: [CLOUD_DEFAULT, EDGE_DEFAULT]}.get(only)
    if wanted is None:
        fail(f"--only must be 'edge' or 'cloud', not {only!r}")
    for name in wanted:
        cached = (models_dir(cache) / name / MARKER).is_file()
        t0 = time.perf_counter()
        kwargs = {"steps": edge_steps, "max_minutes": max_minutes} if name == EDGE_DEFAULT else {}
        try:
            where = ensure_default(name, cache, log=lambda m: console.print(m, highlight=False), **kwargs)
        except ModelError as exc:
            fail(str(exc))
        what = "already built" if cached else f"built in {time.perf_counter() - t0:.0f} s"
        console.print(f"[green]{name}[/]: {where} ({what})", highlight=False)


@app.command()
def info(adapters: Optional[Path] = typer.Option(None, help="Adapter folder (default: <cache>/adapters)")) -> None:
    """Show the base models (built or not) and the trained adapters with their metrics."""
    import json

    from rich.table import Table

    from models.base import MARKER, models_dir

    cache = _settings().cache_dir
    table = Table("base", "state", "where", "detail")
    for name in (EDGE_DEFAULT, CLOUD_DEFAULT):
        marker = models_dir(cache) / name / MARKER
        if marker.is_file():
            card = json.loads(marker.read_text())
            detail = ", ".join(f"{k}={card[k]}" for k in ("architecture", "params_m", "steps", "eval_loss", "minutes")
                               if k in card)
            table.add_row(name, "[green]built[/]", str(marker.parent), detail)
        else:
            table.add_row(name, "[red]missing[/]", "-", "run `netgpt models prepare`")
    console.print(table)
    root = adapters or cache / "adapters"
    cards = sorted(root.glob("*/netgpt-adapter.json")) if root.is_dir() else []
    table = Table("adapter", "task", "base", "steps", "metrics")
    for path in cards:
        card = json.loads(path.read_text())
        table.add_row(path.parent.name, card.get("task", "?"), card.get("base", "?"), str(card.get("steps", "?")),
                      json.dumps(card.get("metrics", {})))
    console.print(table if cards else f"no adapters under {root}")


@app.command()
def train(task: str = typer.Option(..., help="complete, forecast or intent"),
          base: Optional[str] = typer.Option(None, help="edge-default (default), cloud-default, a folder or a hub id"),
          steps: int = typer.Option(300, help="Optimiser steps"),
          batch_size: int = typer.Option(16),
          lr: float = typer.Option(2e-3),
          rank: int = typer.Option(8, help="LoRA rank"),
          n_train: int = typer.Option(2000, help="Generated training examples"),
          n_eval: int = typer.Option(200, help="Generated held-out examples"),
          out: Optional[Path] = typer.Option(None, help="Adapter folder (default: <cache>/adapters/<task>)")) -> None:
    """Fine-tune one LoRA adapter for a task; print eval metrics; save it in peft format with a model card."""
    from models.base import BaseSpec, ModelError, load_base
    from models.lora import LoraTaskConfig, train_adapter
    from models.tasks import TASKS

    if task not in TASKS:
        fail(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
    _threads()
    settings = _settings()
    cfg = LoraTaskConfig(task=task, steps=steps, batch_size=batch_size, lr=lr, rank=rank, n_train=n_train,
                         n_eval=n_eval)
    try:
        model, tokenizer = load_base(BaseSpec(_base_source(base, "edge"), settings.cache_dir),
                                     log=lambda m: console.print(m, highlight=False))
        result = train_adapter(model, tokenizer, cfg, out or settings.cache_dir / "adapters" / task,
                               log=lambda m: console.print(m, highlight=False))
    except ModelError as exc:
        fail(str(exc))
    console.print(f"[green]saved[/] {result['path']}: " + ", ".join(f"{k}={v}" for k, v in result["metrics"].items()),
                  highlight=False)


@cloud_app.command()
def serve(host: str = typer.Option("127.0.0.1"), port: int = typer.Option(8000),
          base: Optional[str] = typer.Option(None, help="cloud-default (default), edge-default, a folder or a hub id"),
          adapter: list[Path] = typer.Option([], help="LoRA adapter folder(s) to serve as extra model ids"),
          max_queue: int = typer.Option(8, help="Refuse new requests (429) while this many run or wait; 0: no cap")
          ) -> None:
    """Serve a base model (and adapters) with the OpenAI API: /v1/models, /v1/chat/completions, /v1/completions."""
    import uvicorn

    from models.base import BaseSpec, ModelError, load_base
    from models.cloud_service import create_app
    from models.serving import AdapterServer

    _threads()
    settings = _settings()
    try:
        model, tokenizer = load_base(BaseSpec(_base_source(base, "cloud"), settings.cache_dir),
                                     log=lambda m: console.print(m, highlight=False))
        server = AdapterServer(model, tokenizer)
        for path in adapter:
            server.load_adapter(path.name, path)
    except ModelError as exc:
        fail(str(exc))
    from models.base import configure_threads

    threads = configure_threads(sum(p.numel() for p in model.parameters()) / 1e6)
    console.print(f"serving {', '.join(server.model_ids())} on http://{host}:{port}/v1 ({threads} torch threads)",
                  highlight=False)
    uvicorn.run(create_app(server, max_queue=max_queue), host=host, port=port, log_level="warning")


@cloud_app.command()
def ask(prompt: str, url: Optional[str] = typer.Option(None, help="OpenAI-compatible base URL (default: settings)"),
        model: Optional[str] = typer.Option(None, help="Model id (default: settings cloud_model)"),
        max_tokens: int = typer.Option(64)) -> None:
    """Ask the configured cloud (this service, vLLM, Ollama ...) one question through the OpenAI API, streaming."""
    import openai

    from models.cloud_service import cloud_client

    client, default_model = cloud_client()
    client = client.with_options(max_retries=0, **({"base_url": url} if url else {}))
    try:
        stream = client.chat.completions.create(model=model or default_model, max_tokens=max_tokens, stream=True,
                                                messages=[{"role": "user", "content": prompt}])
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                console.print(chunk.choices[0].delta.content, end="", highlight=False)
    except openai.APIConnectionError:
        fail(f"no cloud LLM at {client.base_url} (start one: netgpt cloud serve)")
    except openai.APIStatusError as exc:
        fail(f"cloud LLM at {client.base_url} answered {exc.status_code}: {exc.message}")
    console.print()
