"""`netgpt intent ...`: operator intents in natural language.

    netgpt intent translate --format ofctl "TEXT"    flow-level: the ofctl_rest entries, as JSON
    netgpt intent parse "TEXT"                       high-level: the HighLevelIntent, as JSON (and who read it)
    netgpt intent train [--reader student|lora]      train the LM intent reader (generated data)

    netgpt intent serve [--host] [--port]            the operator API (netgpt.intent.api), on Redis
    netgpt intent submit "TEXT" [--level] [--force] [--wait]    compile and send one intent; its record
    netgpt intent list | show ID | withdraw ID       the intent store, through the API
    netgpt intent ask "TEXT" [--plot FILE]           a question about the network, answered from live data

translate and parse run here, alone; the commands after serve are HTTP clients of the operator API (--api, the token
from --token, $NETGPT_OPERATOR_TOKEN or run_dir/operator-token). A sentence that gives no intent prints its
IntentProblem and exits with 2 (translate/parse: as JSON on stderr; the API clients: one line); nothing else is printed.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Optional, get_args

import typer
from rich.markup import escape

from netgpt.cli.common import console, fail, parse_blocks
from netgpt.core.messages import IntentProblem
from netgpt.core.settings import get_settings

app = typer.Typer(help="Operator intents: translate, parse, train the LM reader; serve the operator API, submit, "
                       "list, show, withdraw and ask through it.", no_args_is_help=True)


def _problem(exc) -> None:
    print(exc.problem.model_dump_json(), file=sys.stderr)
    raise typer.Exit(2)


@app.command()
def translate(text: str = typer.Argument(..., help="One sentence about one or more switches"),
              format: str = typer.Option("ofctl", "--format", help="Output format: ofctl (Ryu ofctl_rest JSON)")) -> None:
    """Translate a flow-level sentence into OpenFlow 1.3 entries."""
    from netgpt.intent import IntentError, translate_to_flows

    if format != "ofctl":
        fail(f"unknown format {format!r}: expected ofctl")
    try:
        flows = translate_to_flows(text)
    except IntentError as exc:
        _problem(exc)
    print(json.dumps(flows, indent=2))


@app.command()
def parse(text: str = typer.Argument(..., help="One high-level operator sentence"),
          rules_only: bool = typer.Option(False, "--rules-only", help="Do not ask the LM reader")) -> None:
    """Parse a high-level sentence into a HighLevelIntent."""
    from netgpt.intent import IntentError, understand

    try:
        u = understand(text, lm=None if rules_only else "default")
    except IntentError as exc:
        _problem(exc)
    print(json.dumps({"intent": u.intent.model_dump(mode="json"), "confidence": u.confidence, "read_by": u.by,
                      "unread": u.unread}, indent=2))


@app.command()
def train(reader: str = typer.Option("", help="student (a cut of the base, every kept block trained) or lora (an "
                                                "adapter on the whole base); default: NETGPT_INTENT_READER, student"),
          steps: Optional[int] = typer.Option(None, min=1, help="Optimiser steps (default: student 1000, lora 400)"),
          batch_size: int = typer.Option(8, min=1),
          lr: Optional[float] = typer.Option(None, min=0,
                                             help="Learning rate (default: student 5e-4, lora 1e-3)"),
          rank: int = typer.Option(16, min=1, help="LoRA rank (lora only)"),
          blocks: str = typer.Option("", help="The base's blocks the student keeps (student only; default "
                                              "0-7,28,29)"),
          minutes: Optional[float] = typer.Option(None, min=0,
                                                  help="Wall-clock cap for the optimiser steps"),
          n_train: int = typer.Option(3000, min=1, help="Generated training sentences"),
          n_eval: int = typer.Option(200, min=1, help="Generated held-out sentences (another seed)"),
          seed: int = typer.Option(0)) -> None:
    """Train the LM intent reader on generated paraphrases (never on the evaluation sets)."""
    from netgpt.intent import lm, training_data
    from netgpt.models.base import BaseSpec, ModelError, configure_threads, load_base
    from netgpt.models.lora import LoraTaskConfig, train_adapter
    from netgpt.models.student import DEFAULT_KEEP, StudentConfig, train_student
    from netgpt.models.tasks import Example

    settings = get_settings()
    reader = reader or settings.intent_reader
    if reader not in ("student", "lora"):
        fail(f"--reader must be student or lora, not {reader!r}")
    try:
        keep = tuple(parse_blocks(blocks)) if blocks else DEFAULT_KEEP
    except ValueError:
        fail(f"--blocks {blocks!r}: expected block numbers and ranges, e.g. 0-7,28,29")
    data_dir = Path(training_data.__file__).parent / "data"
    held = training_data.eval_sentences(data_dir)
    pairs = training_data.generate(n_train + n_eval, seed=seed, exclude=held)
    if training_data.clashes(pairs, data_dir):
        fail("generated data contains an evaluation sentence")  # generate() excludes them; this is the check
    examples = [Example(lm.prompt(text.lower()), " " + slots) for text, slots in pairs]
    train_set, eval_set = examples[:n_train], examples[n_train:]
    provenance = (f"GENERATED by netgpt/intent/training_data.py, seed {seed}: {n_train} train and {n_eval} eval "
                  f"sentences (disjoint), none equal to a sentence of intent/data/eval_*.jsonl")
    log = lambda m: console.print(m, highlight=False)  # noqa: E731
    configure_threads()
    try:
        model, tokenizer = load_base(BaseSpec(settings.intent_base, settings.cache_dir), log=log)
        if reader == "student":
            cfg = StudentConfig(task=lm.STUDENT, keep=keep, steps=1000 if steps is None else steps,
                                batch_size=batch_size, lr=5e-4 if lr is None else lr, seed=seed, max_minutes=minutes)
            result = train_student(model, tokenizer, cfg, lm.student_dir(settings), (train_set, eval_set, provenance),
                                   log=log, progress=sys.stderr.isatty())
        else:
            # LLaMA: every projection (attention and MLP); other architectures: netgpt.models.lora's defaults
            llama = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
            cfg = LoraTaskConfig(task=lm.ADAPTER, steps=400 if steps is None else steps, batch_size=batch_size,
                                 lr=1e-3 if lr is None else lr, rank=rank,
                                 alpha=2 * rank, n_train=n_train, n_eval=n_eval, seed=seed, max_minutes=minutes,
                                 target_modules=llama if model.config.model_type == "llama" else None)
            result = train_adapter(model, tokenizer, cfg, lm.adapter_dir(settings), log=log,
                                   progress=sys.stderr.isatty(), data=(train_set, eval_set, provenance))
    except ModelError as exc:
        fail(str(exc))
    console.print(f"[green]saved[/] {result['path']}: " + ", ".join(f"{k}={v}" for k, v in result["metrics"].items()),
                  highlight=False)

