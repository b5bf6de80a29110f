"""`netgpt models ...`: build, fine-tune and inspect the language models.

torch and transformers are imported inside netgpt.models' functions, not here: `netgpt --help` must not load them.
"""
from __future__ import annotations

import filecmp
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from netgpt.cli.common import console, fail, parse_blocks, positive_minutes
from netgpt.core.settings import get_settings
from netgpt.models.base import (
    CLOUD_DEFAULT,
    EDGE_DEFAULT,
    MARKER,
    BaseSpec,
    ModelError,
    configure_threads,
    ensure_default,
    load_base,
    models_dir,
)
from netgpt.models.lora import (CARD, EVAL_SEED_OFFSET, SHIPPED_ADAPTERS, LoraTaskConfig, base_identity,
                                check_adapter_for, split, train_adapter)
from netgpt.models.tasks import TASKS

app = typer.Typer(help="Build, fine-tune and inspect the language models.", no_args_is_help=True)


def bases_to_build(only: Optional[str], edge_base: str) -> Optional[list[str]]:
    """The defaults `prepare` builds: the cloud's, and the 14 M GPT-2 only when the edge runs on it (issue 15: it cost
    most of a first demo's 13 minutes while nothing used it), or what --only names; None for an unknown --only."""
    used = [CLOUD_DEFAULT] + ([EDGE_DEFAULT] if edge_base == EDGE_DEFAULT else [])
    return {"edge": [EDGE_DEFAULT], "cloud": [CLOUD_DEFAULT], None: used}.get(only)


@app.command()
def prepare(edge_steps: int = typer.Option(1000, help="Pre-training steps for the edge GPT-2 (batch 8 x 128 tokens)"),
            max_minutes: float = typer.Option(9.0, help="Wall-clock cap for the edge pre-training"),
            only: Optional[str] = typer.Option(None, help="Build only 'edge' (the 14 M GPT-2 edge-default) or "
                                               "'cloud' (SmolLM2-135M-Instruct)")) -> None:
    """Build the offline defaults the settings use, once: SmolLM2 converted from the GGUF package (the cloud, and the
    edge LM's base by default); the 14 M GPT-2 is pre-trained (minutes) only when Settings.edge_base names it, or with
    --only edge. Idempotent."""
    configure_threads()
    settings = get_settings()
    cache = settings.cache_dir
    wanted = bases_to_build(only, settings.edge_base)
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


def _edge_is_student(task: str) -> bool:
    """Whether the configured edge base is a task student of `task` (netgpt.models.student): the LM itself, which takes
    no adapter; printed, so `check` and `install` (what `make models` runs) succeed without one."""
    from netgpt.models.student import is_student_of

    base = get_settings().edge_base
    if not is_student_of(base, task):
        return False
    console.print(f"[green]{base}[/]: the edge base is a student of the {task} task; it takes no adapter",
                  highlight=False)
    return True


def _checked(path: Path, task: str) -> dict:
    """The card of the adapter at `path` when it is the task's and was trained for the configured edge base
    (Settings.edge_base, by its weights' fingerprint); else fail() with the reason."""
    settings = get_settings()
    if not (path / "adapter_config.json").is_file():
        fail(f"no {task} adapter at {path}")
    try:
        card = check_adapter_for(path, base_identity(BaseSpec(settings.edge_base, settings.cache_dir)))
    except ModelError as exc:
        fail(str(exc))
    if card.get("task") not in (None, task):
        fail(f"the adapter at {path} is for task {card.get('task')!r}, not {task!r}")
    return card


@app.command()
def check(task: str = typer.Option("complete", help="The adapter's task"),
          adapter: Optional[Path] = typer.Option(None, help="Adapter folder (default: <cache>/adapters/<task>)")) -> None:
    """Exit 0 when the task's adapter exists and was trained for the configured edge base (Settings.edge_base, by
    its weights' fingerprint), else 1 with the reason."""
    if adapter is None and _edge_is_student(task):
        return
    path = adapter or get_settings().cache_dir / "adapters" / task
    card = _checked(path, task)
    console.print(f"[green]{path}[/]: {task} adapter for {get_settings().edge_base} ({card.get('steps', '?')} steps)",
                  highlight=False)


@app.command()
def install(task: str = typer.Option("complete", help="The adapter's task"),
            source: Optional[Path] = typer.Option(None, help="Adapter folder (default: the one shipped in "
                                                  "models/adapters/<task>)")) -> None:
    """Make the shipped adapter (models/adapters/<task>, trained here with the command its README names) the cache's
    <task> adapter, which the edge agent loads, after checking it was trained for the configured edge base: what
    `make models` does, and it trains one only when this fails (another edge base). Idempotent; an adapter of the
    cache that differs (trained by `netgpt models train`) is replaced: train yours with --out to keep it."""
    if source is None and _edge_is_student(task):
        return
    src = source or SHIPPED_ADAPTERS / task
    card = _checked(src, task)
    dest = get_settings().cache_dir / "adapters" / task
    if all((dest / f).is_file() and filecmp.cmp(dest / f, src / f, shallow=False)
           for f in ("adapter_model.safetensors", "adapter_config.json", CARD)):
        console.print(f"[green]{dest}[/]: the shipped {task} adapter ({card.get('steps', '?')} steps), installed",
                      highlight=False)
        return
    staging = dest.with_name(dest.name + ".installing")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(src, staging, ignore=shutil.ignore_patterns("*.gguf"))  # the GGUF LoRA is made again on load
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    console.print(f"[green]{dest}[/]: installed the shipped {task} adapter ({card.get('steps', '?')} steps, "
                  f"eval loss {card.get('metrics', {}).get('eval_loss', '?')})", highlight=False)


@app.command()
def info(adapters: Optional[Path] = typer.Option(None, help="Adapter folder (default: <cache>/adapters)")) -> None:
    """Show the base models (built or not) and the trained adapters with their metrics."""
    cache = get_settings().cache_dir
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
          base: Optional[str] = typer.Option(None, help="Settings.edge_base (default), cloud-default, edge-default, a folder or a hub id"),
          student: bool = typer.Option(False, "--student", help="Train a task student instead of a LoRA adapter: "
                                       "blocks of the base (--blocks), every one trained (netgpt.models.student)"),
          blocks: str = typer.Option("", help="The base's blocks a student keeps (default 0-7,28,29)"),
          steps: Optional[int] = typer.Option(None, min=1, help="Optimiser steps (default: adapter 300, student 1000)"),
          batch_size: Optional[int] = typer.Option(None, min=1, help="(default: adapter 16, student 8)"),
          lr: Optional[float] = typer.Option(None, min=0, help="Learning rate (default: adapter 2e-3, student 5e-4)"),
          rank: Optional[int] = typer.Option(None, min=1, help="LoRA rank (adapter only; default 8)"),
          n_train: int = typer.Option(2000, min=1, help="Generated training examples"),
          n_eval: int = typer.Option(200, min=1, help="Generated held-out examples"),
          minutes: Optional[float] = typer.Option(None, callback=positive_minutes,
                                                  help="Wall-clock cap for the optimiser steps"),
          out: Optional[Path] = typer.Option(None, help="Output folder (default: <cache>/adapters/<task>, a student "
                                                        "<cache>/models/<task>-student)")) -> None:
    """Fine-tune one LoRA adapter (or a task student) for a task; print eval metrics; save it with a model card."""
    from netgpt.models.student import DEFAULT_KEEP, StudentConfig, task_dir, train_student

    if task not in TASKS:
        fail(f"unknown task {task!r}: expected one of {', '.join(TASKS)}")
    if blocks and not student:
        fail("--blocks is for --student")
    if rank is not None and student:  # a student trains its blocks themselves: it has no LoRA rank
        fail("--rank is for a LoRA adapter, not --student")
    try:
        keep = tuple(parse_blocks(blocks)) if blocks else DEFAULT_KEEP
    except ValueError:
        fail(f"--blocks {blocks!r}: expected block numbers and ranges, e.g. 0-7,28,29")
    configure_threads()
    settings = get_settings()
    log = lambda m: console.print(m, highlight=False)  # noqa: E731
    try:
        model, tokenizer = load_base(BaseSpec(base or settings.edge_base, settings.cache_dir), log=log)
        if student:
            cfg = StudentConfig(task=task, keep=keep, steps=steps or 1000, batch_size=batch_size or 8,
                                lr=5e-4 if lr is None else lr, max_minutes=minutes)
            lcfg = LoraTaskConfig(task=task, n_train=n_train, n_eval=n_eval, seed=cfg.seed)
            train_set, eval_set = split(lcfg)
            provenance = (f"GENERATED by netgpt/models/tasks.py ({task}), seeds {lcfg.seed} (train, {n_train}) and "
                          f"{lcfg.seed + EVAL_SEED_OFFSET} (eval, {len(eval_set)}, none of its prompts in train)")
            result = train_student(model, tokenizer, cfg, out or task_dir(settings.cache_dir, task),
                                   (train_set, eval_set, provenance), log=log, progress=sys.stderr.isatty())
        else:
            cfg = LoraTaskConfig(task=task, steps=steps or 300, batch_size=batch_size or 16,
                                 lr=2e-3 if lr is None else lr, rank=8 if rank is None else rank, n_train=n_train,
                                 n_eval=n_eval, max_minutes=minutes)
            result = train_adapter(model, tokenizer, cfg, out or settings.cache_dir / "adapters" / task, log=log)
    except ModelError as exc:
        fail(str(exc))
    console.print(f"[green]saved[/] {result['path']}: " + ", ".join(f"{k}={v}" for k, v in result["metrics"].items()),
                  highlight=False)
