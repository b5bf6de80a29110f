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

from netgpt.cli.common import console, fail, parse_blocks, positive_minutes
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
          minutes: Optional[float] = typer.Option(None, callback=positive_minutes,
                                                  help="Wall-clock cap for the optimiser steps"),
          n_train: int = typer.Option(3000, min=1, help="Generated training sentences"),
          n_eval: int = typer.Option(200, min=1, help="Generated held-out sentences (another seed)"),
          seed: int = typer.Option(0),
          if_missing: bool = typer.Option(False, "--if-missing",
                                          help="Do nothing when the reader is built already (what make test runs)")
          ) -> None:
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
    if if_missing and lm.built(settings.model_copy(update={"intent_reader": reader})):
        console.print(f"the {reader} intent reader is built already", highlight=False)
        return
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


# --- the operator API and its clients --------------------------------------------------------------------------------

API = typer.Option(None, "--api", help="Base URL of the operator API (default: http://127.0.0.1:<operator_api_port>)")
TOKEN = typer.Option(None, "--token", help="Bearer token (default: $NETGPT_OPERATOR_TOKEN or run_dir/operator-token)")
ENDS = {"installed", "verified", "failed", "withdrawn"}  # states --wait stops at


@app.command()
def serve(host: str = typer.Option("127.0.0.1", help="Address to listen on"),
          port: Optional[int] = typer.Option(None, min=1, max=65535,
                                             help="TCP port (default: Settings.operator_api_port, 8090)")) -> None:
    """Serve the operator API (OpenAPI at /openapi.json, docs at /docs) on the settings' Redis."""
    import socket

    import redis
    import uvicorn

    from netgpt.core.bus import connect
    from netgpt.intent.api import TOKEN_ENV, create_app, token_file

    settings = get_settings()
    port = port or settings.operator_api_port
    with socket.socket() as s:  # a clear error now, not uvicorn's after start-up
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    try:
        application = create_app(settings)
    except (OSError, RuntimeError) as exc:  # the token file cannot be made or read
        fail(str(exc))
    try:
        connect(settings).ping()
    except redis.RedisError as exc:
        console.print(f"[yellow]warning:[/] Redis is not reachable yet ({exc}); requests get 503 until it is",
                      highlight=False)
    where = f"${TOKEN_ENV}" if os.environ.get(TOKEN_ENV) else str(token_file(settings))
    print(f"operator API on http://{host}:{port}/v1 (OpenAPI at /openapi.json; token in {where})", flush=True)
    uvicorn.run(application, host=host, port=port, log_level="warning")


@app.command()
def submit(text: str = typer.Argument(..., help="One operator sentence"),
           level: str = typer.Option("auto", help="auto, high or flow"),
           force: bool = typer.Option(False, "--force", help="Send it even when it conflicts with installed intents"),
           wait: bool = typer.Option(False, "--wait", help="Follow the record until installed/verified/failed (10 s)"),
           api: Optional[str] = API, token: Optional[str] = TOKEN) -> None:
    """Compile and send one intent through the operator API; prints its record."""
    record = _call("POST", "/v1/intents", api, token, json={"text": text, "level": level, "force": force})
    _print_record(record)
    if not wait:
        return
    if not record["compiled"]:  # 'allow' withdraws other intents and sends nothing of its own to install
        console.print("nothing to install: not waiting", highlight=False)
        return
    seen, deadline = record["state"], time.monotonic() + 10.0
    while seen not in ENDS and time.monotonic() < deadline:
        time.sleep(0.25)
        record = _call("GET", f"/v1/intents/{record['intent_id']}", api, token)
        if record["state"] != seen:
            seen = record["state"]
            detail = record["history"][-1]["detail"] if record["history"] else ""
            console.print(f"-> {seen}" + (f": {detail}" if detail else ""), highlight=False, markup=False)
    if seen not in ENDS:
        fail(f"still {seen} after 10 s: is the controller running?")
    if seen == "failed":
        raise typer.Exit(1)


@app.command("list")
def list_(api: Optional[str] = API, token: Optional[str] = TOKEN,
          as_json: bool = typer.Option(False, "--json", help="The records as JSON")) -> None:
    """Every intent in the store, oldest first."""
    from rich.table import Table
    from rich.text import Text  # the operator's words as they are, never read as markup

    records = _call("GET", "/v1/intents", api, token)
    if as_json:
        print(json.dumps(records, indent=2))
        return
    if not records:
        console.print("no intents", highlight=False)
        return
    table = Table("id", "state", "level", "text", "last event")
    for rec in records:
        last = rec["history"][-1] if rec["history"] else None
        event = f"{_clock(last['ts'])} {last['detail']}" if last else rec["measured"].get("problem", {}).get("message",
                                                                                                            "")
        table.add_row(*(Text(x) for x in (rec["intent_id"], rec["state"], rec["level"], rec["text"], event)))
    console.print(table)


@app.command()
def show(intent_id: str = typer.Argument(...), api: Optional[str] = API, token: Optional[str] = TOKEN,
         as_json: bool = typer.Option(False, "--json", help="The record as JSON")) -> None:
    """One intent: what was understood, what the controller was sent, its history."""
    record = _call("GET", f"/v1/intents/{intent_id}", api, token)
    if as_json:
        print(json.dumps(record, indent=2))
        return
    _print_record(record)
    if record["intent"]:
        fields = {k: v for k, v in record["intent"].items() if v is not None}
        console.print("understood: " + json.dumps(fields), highlight=False, markup=False)
    for c in record["compiled"]:
        console.print(f"sent: {c['action']}, {len(c['flows'])} flow entries, params {json.dumps(c['params'])}",
                      highlight=False, markup=False)
    for e in record["history"]:
        console.print(f"  {_clock(e['ts'])} {e['state']}" + (f": {e['detail']}" if e["detail"] else ""),
                      highlight=False, markup=False)
    if record["measured"]:
        console.print("measured: " + json.dumps(record["measured"]), highlight=False, markup=False)


@app.command()
def withdraw(intent_id: str = typer.Argument(...), api: Optional[str] = API, token: Optional[str] = TOKEN) -> None:
    """Take an intent back: the controller removes what it installed for it."""
    _call("DELETE", f"/v1/intents/{intent_id}", api, token)
    console.print(f"withdrawal of {intent_id} sent; the controller records it as withdrawn", highlight=False)


@app.command()
def ask(text: str = typer.Argument(..., help="A question, e.g. 'which links will be above 80% in the next hour?'"),
        plot: Optional[Path] = typer.Option(None, "--plot", help="Save the answer's plot (PNG) here"),
        api: Optional[str] = API, token: Optional[str] = TOKEN,
        as_json: bool = typer.Option(False, "--json", help="The whole answer (text, data) as JSON")) -> None:
    """Ask the network a question; answered from live telemetry, forecasts, heartbeats and the intent store."""
    result = _call("POST", "/v1/ask", api, token, json={"text": text, "plot": plot is not None})
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        console.print(result["text"], highlight=False, markup=False)
    if plot is not None:
        if not result["plot"]:
            console.print("(no plot for this question)", highlight=False)
            return
        try:
            plot.write_bytes(_call("GET", result["plot"], api, token, raw=True))
        except OSError as exc:
            fail(f"cannot write {plot}: {exc.strerror or exc}")
        console.print(f"plot saved to {plot}", highlight=False)


def _call(method: str, path: str, api: str, token: str | None, json: dict | None = None, raw: bool = False):
    """One request to the operator API: the JSON body (bytes when raw), or a one-line error exit (2 for an
    IntentProblem)."""
    import httpx

    from netgpt.intent.api import operator_token

    settings = get_settings()
    api = (api or f"http://127.0.0.1:{settings.operator_api_port}").rstrip("/")
    url = api + path
    try:
        headers = {"Authorization": f"Bearer {token or operator_token(settings)}"}
    except (OSError, RuntimeError) as exc:
        fail(f"no operator token: {exc}")
    try:
        # long enough for the LM reader's first load on the server; a refused connection fails at once
        resp = httpx.request(method, url, json=json, headers=headers, timeout=60.0)
    except httpx.ConnectError:
        fail(f"operator API not reachable at {api}; start it with netgpt intent serve")
    except httpx.HTTPError as exc:
        fail(f"operator API at {api}: {type(exc).__name__}: {exc}")
    if resp.status_code < 400:
        return resp.content if raw else resp.json()
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict) or "message" not in body:
        fail(f"operator API answered {resp.status_code}: {resp.text.strip()[:200]}")
    line = f"{body.get('kind', resp.status_code)}: {body['message']}"
    if body.get("question"):
        line += f" — {body['question']}"
    if body.get("options"):
        line += f" (options: {', '.join(body['options'])})"
    fail(escape(line), code=2 if body.get("kind") in get_args(IntentProblem.model_fields["kind"].annotation) else 1)


def _print_record(record: dict) -> None:
    by = f", read by {record['read_by']}" if record.get("read_by") else ""
    console.print(f"[bold]{escape(record['intent_id'])}[/] {record['state']} ({record['level']}{by}): "
                  f"{escape(record['text'])}", highlight=False)


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))
