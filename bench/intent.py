"""Operator-intent benchmark: accuracy and latency of the two readers on the hand-written held-out sets.

    python bench/intent.py [--repeats 3] [--no-lm] [--reader student|lora]

Sets (intent/data/README.md): `test` was written by hand before any rule existed and was not used while writing them;
`dev` was written at the same time and the rules were developed on it; `blind` was written by a helper who never saw the
rules nor the other sets, but its failures were read on 2026-12-02, so it is a development set since (`blind (seen)`);
`blind2` and `blind3` likewise, each scored blind once on 2026-12-07 and read since (`blind2 (seen)`, `blind3 (seen)`).
None was trained on. Rows:
- flow-level: translate_to_flows, exact match of the whole entry list;
- high-level, three readers on the same sentences: rules alone, the LM reader alone (every sentence through the LM,
  the ablation of the rules), and the default (rules, then the LM where the rules read only part of a sentence);
  a sentence is right when all 13 fields equal the expected ones;
- bad input: the structured error of the expected kind, and no intent;
- conflicts: classify_conflict on the 30 hand-built pairs.
Latency per sentence in ms (median, p95, max over `repeats` passes, one with an LM reader; the first pass warms up),
and the median and p95 over the sentences the LM was asked to read, whether its reading was kept or not ("LM asked"). Targets (issue 11): >= 95%
exact flow-level, >= 90% high-level, < 100 ms per sentence on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from netgpt.core.settings import get_settings
from netgpt.intent import IntentError, classify_conflict, translate_to_flows, understand
from netgpt.intent.lm import IntentLM

DATA = Path(__file__).resolve().parents[1] / "intent" / "data"
SPLITS = ("test", "dev", "blind", "blind2", "blind3", "blind4")
# blind: read since 2026-12-02; blind2: scored blind once (2026-12-07 10:05 UTC: flows 34/50, intents 45/50, saved in
# bench/out/intent_blind2_first_2026-12-07.txt), read since; blind3 likewise (10:21 UTC: flows 45/50, intents 47/50,
# bench/out/intent_blind3_first_2026-12-07.txt): all three are development sets now
LABEL = {"blind": "blind (seen)", "blind2": "blind2 (seen)", "blind3": "blind3 (seen)", "blind4": "blind4"}


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def timed(fn, items, repeats):
    """(results of the last pass, per-item latency in ms over all passes after the first)."""
    results, times = [], []
    for rep in range(repeats + 1):
        results = []
        for item in items:
            t0 = time.perf_counter()
            try:
                results.append(fn(item))
            except IntentError as exc:
                results.append(exc)
            if rep:
                times.append((time.perf_counter() - t0) * 1000)
    return results, times


def lat(times):
    """Median, p95 (nearest rank: of 2 values the larger) and max."""
    s = sorted(times)
    return f"{statistics.median(s):.2f}", f"{s[math.ceil(0.95 * len(s)) - 1]:.2f}", f"{s[-1]:.1f}"


class Asked:
    """The LM reader, noting whether it was asked for the current sentence (whether or not its reading was kept)."""

    def __init__(self, reader: IntentLM):
        self.reader, self.asked = reader, False

    def read(self, t: str):
        self.asked = True
        return self.reader.read(t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-lm", action="store_true", help="Rules only (no LM rows)")
    ap.add_argument("--reader", choices=["student", "lora"], help="The LM reader (default: Settings.intent_reader)")
    args = ap.parse_args()
    console = Console(width=170)  # a table for a log or a terminal alike
    settings = get_settings()
    if args.reader:
        settings = settings.model_copy(update={"intent_reader": args.reader})
    reader = None if args.no_lm else IntentLM.open(settings)
    if reader is not None:
        console.print(f"LM reader: {settings.intent_reader} ({getattr(reader.server, 'name', '?')})")
    if reader is None and not args.no_lm:
        console.print("LM reader not built (netgpt intent train): LM rows skipped")
    table = Table("set", "reader", "n", "right", "accuracy", "LM asked", "p50 ms", "p95 ms", "max ms",
                  "LM-asked p50 / p95 ms",
                  title="Operator intents on the hand-written sets")

    for split in SPLITS:
        data = rows(f"eval_flows_{split}.jsonl")
        got, times = timed(lambda r: translate_to_flows(r["text"]), data, args.repeats)
        right = sum(g == r["flows"] for g, r in zip(got, data))
        table.add_row(f"flows {LABEL.get(split, split)}", "rules", str(len(data)), str(right),
                      f"{right / len(data):.1%}", "-", *lat(times), "-")
    readers = [("rules", None)]
    if reader is not None:
        readers += [("LM only", "lm-only"), ("rules + LM (default)", Asked(reader))]
    for split in SPLITS:
        data = rows(f"eval_intents_{split}.jsonl")
        for name, lm in readers:
            repeats = args.repeats if lm is None else 1
            asked: list[bool] = []  # per sentence of the timed pass: was the LM asked (kept or not)?

            def fn(r, lm=lm):
                if lm == "lm-only":
                    asked.append(True)
                    return _lm_only(reader, r["text"])
                if lm is None:
                    return understand(r["text"], lm=None)
                lm.asked = False
                try:
                    return understand(r["text"], lm=lm)
                finally:
                    asked.append(lm.asked)

            got, times = timed(fn, data, repeats)
            right = sum(not isinstance(g, Exception) and g.intent.model_dump(mode="json") == r["intent"]
                        for g, r in zip(got, data))
            by_lm = [t for a, t in zip(asked[-len(data):], times[-len(data):]) if a] if lm else []
            table.add_row(f"intents {LABEL.get(split, split)}", name, str(len(data)), str(right),
                          f"{right / len(data):.1%}", str(len(by_lm)) if lm else "-", *lat(times),
                          " / ".join(lat(by_lm)[:2]) if by_lm else "-")
    for name in ("eval_bad_intents.jsonl", "eval_bad_blind.jsonl", "eval_bad_flows.jsonl"):
        data = rows(name)
        read = translate_to_flows if "flows" in name else lambda text: understand(text, lm=reader)
        got, times = timed(lambda r: read(r["text"]), data, 1)
        right = sum(isinstance(g, IntentError) and g.kind == r["error"] for g, r in zip(got, data))
        table.add_row(name.removesuffix(".jsonl"), "default", str(len(data)), str(right), f"{right / len(data):.1%}",
                      "-", *lat(times), "-")
    pairs = rows("conflict_pairs.jsonl")
    got, times = timed(lambda r: classify_conflict(r["installed"], r["new"]), pairs, args.repeats)
    right = sum(g == r["expected"] for g, r in zip(got, pairs))
    table.add_row("conflict pairs", "classify_conflict", str(len(pairs)), str(right), f"{right / len(pairs):.1%}", "-",
                  *lat(times), "-")
    console.print(table)


def _lm_only(reader: IntentLM, text: str):
    """The LM reader on every sentence, with the same gate and validation as the default path."""
    from netgpt.intent.parse import Understanding, _validated
    from netgpt.intent.text import checked

    fields, confidence = reader.read(checked(text))
    return Understanding(_validated(fields), confidence, "lm")


if __name__ == "__main__":
    main()
