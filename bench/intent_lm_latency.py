"""What guided decoding saves the LM intent reader, measured without the trained adapter.

    python bench/intent_lm_latency.py [--limit 40]

For each hand-written sentence (test, dev and the seen blind set of intent/data; never another file) the slot line the
LM should write is known: its expected intent in slot form (training_data.to_slots). Both decoders are made to write
exactly that line (teacher forcing) on the llama.cpp server of the reader's base model, so that they do the same work
the trained adapter would, and are timed:
- plain: what IntentLM.read did with server.complete: the prompt, then one decode step per token and the end;
- guided: IntentLM.decode, which writes what the slot grammar forces without asking the LM (netgpt.intent.lm.forced).
The slot's cache is emptied before each, so each reads its prompt. The adapter's LoRA is not applied (it is not built
here): its cost per token is the same in both.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from netgpt.core.settings import get_settings
from netgpt.intent.lm import IntentLM, prompt
from netgpt.intent.text import checked
from netgpt.intent.training_data import to_slots
from netgpt.models.backends import open_server

DATA = Path(__file__).resolve().parents[1] / "intent" / "data"
SETS = ("eval_intents_test.jsonl", "eval_intents_dev.jsonl", "eval_intents_blind.jsonl")


class Teacher:
    """The real server's work (next_logits), with the expected line's next token made the greedy choice."""

    def __init__(self, server, line_ids: list[int]):
        self.server, self.tokenizer, self.line, self.start, self.steps = server, server.tokenizer, line_ids, 0, 0

    def encode(self, text, max_tokens):
        ids = self.server.encode(text, max_tokens)
        self.start = len(ids)
        return ids

    def next_logits(self, ids, adapter=None):
        self.steps += 1
        logits = self.server.next_logits(ids).copy()
        written = len(ids) - self.start
        logits[self.line[written] if written < len(self.line) else self.tokenizer.eos_token_id] = logits.max() + 10
        return logits


def plain(server, ids: list[int], line: list[int]) -> None:
    """LlamaCppServer.complete's loop (models/llamacpp.py _tokens) writing `line`, then the end-of-text token."""
    with server._slot(None) as slot:
        slot.feed(ids)
        for token in line:
            np.argmax(slot.logits())
            slot.llm.eval([token])
        np.argmax(slot.logits())  # the end-of-text token's step


def empty(server) -> None:
    for slot in server._all:
        slot.llm.n_tokens = 0
        slot.saved.clear()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="At most this many sentences (0: all)")
    ap.add_argument("--no-save", action="store_true", help="No saved prompt states (models/llamacpp.py _Slot.save)")
    args = ap.parse_args()
    if args.no_save:
        from netgpt.models import llamacpp

        llamacpp.SAVE_FROM_TOKENS = 10 ** 9
    settings = get_settings()
    server = open_server(settings.intent_base, settings.cache_dir, backend="llamacpp", build=False, log=lambda m: None)
    tok = server.tokenizer
    rows = [json.loads(x) for name in SETS for x in (DATA / name).read_text().splitlines() if x.strip()]
    rows = rows[:args.limit] if args.limit else rows
    times: dict[str, list[float]] = {"plain": [], "guided": []}
    steps: dict[str, list[int]] = {"plain": [], "guided": []}
    same = 0
    for i, row in enumerate(rows):
        line = " " + to_slots(row["intent"])
        line_ids = tok(line, add_special_tokens=False)["input_ids"]  # as training tokenized the target
        text = prompt(checked(row["text"]))
        ids = server.encode(text, 48)
        for name in (("plain", "guided") if i % 2 else ("guided", "plain")):  # neither always first
            empty(server)
            t0 = time.perf_counter()
            if name == "plain":
                plain(server, ids, line_ids)
                steps[name].append(len(line_ids) + 1)
            else:
                teacher = Teacher(server, line_ids)
                got, _ = IntentLM(teacher, guided=True).decode(text)
                same += got == line
                steps[name].append(teacher.steps)
            times[name].append((time.perf_counter() - t0) * 1000)
    print(f"{len(rows)} sentences; slot line {statistics.mean(steps['plain']) - 1:.1f} tokens on average; "
          f"guided wrote the expected line {same}/{len(rows)} times; threads per slot {server.threads}")
    print(f"{'decoder':8} {'LM steps':>9} {'p50 ms':>8} {'mean ms':>8} {'p95 ms':>8}")
    for name in ("plain", "guided"):
        s = sorted(times[name])
        print(f"{name:8} {statistics.mean(steps[name]):9.1f} {statistics.median(s):8.1f} {statistics.mean(s):8.1f} "
              f"{s[int(0.95 * (len(s) - 1))]:8.1f}")


if __name__ == "__main__":
    main()
