"""Edge-cloud collaboration benchmark, scored on the cloud's own text only (issue 12).

    .venv/bin/python bench/collab.py [--cloud-url http://127.0.0.1:8000/v1] [--edge-base edge-default|none|DIR]
                                     [--prompts FILE] [--limit N] [--variants a,b,...]

Default prompts: the held-out set edge_agent/data/collab_heldout.jsonl (67 hand-written prompts, six cells, never tuned
on). Try changes on bench/collab_dev_prompts.jsonl (--prompts) instead. Without --cloud-url it starts `netgpt cloud
serve` (SmolLM2-135M-Instruct) on a free port and stops it by PID at the end. The edge runs in this process.

Variants, every one on every prompt, in a shuffled order per prompt (seed 0) so that load drift hits them alike:
  cloud-only  the raw prompt, the generic system message (the paper's baseline)
  retrieval   the raw prompt, and the same facts the edge selects, in the system message (plain retrieval, no edge LM,
              no rewriting)
  template    the edge's completed prompt without the LM: one sentence of the facts the rules select, then the user's
              words ("I am in Osaka, Japan, near Dotonbori; it is Saturday 19:05. where can I try takoyaki?")
  netgpt      the same, the sentence written by the edge LM (SmolLM2-135M-Instruct + its `complete` adapter, --adapter)
              from the cell's whole context; the rules' sentence when the LM's is not grounded in the context
  netgpt-alt  the same with another edge LM (--alt-edge-base and --alt-adapter; by default the same base with the
              adapter in <cache>/adapters/complete, the one `make demo` trains), to compare them in the same run;
              skipped with --alt-edge-base none
  routed      the edge answers lookups exactly (and with its LM at --threshold), the cloud a compact completion
  edge-only   the edge alone

Scoring (edge_agent/collab/scoring.py): only text the cloud generated (engine.cloud_generated_text: nothing the edge
wrote, no prefilled opener) is graded: topic (the request is answered), facts (the prompt's location fact kinds named
correctly), wrong facts, echo (the answer mostly repeats what it was sent; scored 0). An answer the edge gave scores 0
on these; the routing table says what the edge answered and how. Means with 95% intervals from 2000 bootstrap
resamples of the prompts (paired for differences between variants). Latency p50/p95 per request, cloud tokens against
cloud-only, and the edge LM's share of the completed prompt (its words over the prompt's words). Where the cloud's time
goes: its answers' median length and share stopped at --max-tokens per variant, and a least-squares fit of its time on
the tokens it read and wrote.

Writes bench/out/collab.json (every answer) and prints the tables, plus a markdown table for the README (--markdown).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The Hugging Face libraries' own switch (not a NETGPT setting): never reach for a model hub. They read it when they are
# imported, so it is set before anything that imports them.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from netgpt.core.messages import CollabMode, EdgePromptRequest, EdgePromptResponse  # noqa: E402
from netgpt.edge_agent.agent import AgentSettings  # noqa: E402
from netgpt.edge_agent.collab.completion import retrieval_system, select_facts  # noqa: E402
from netgpt.edge_agent.collab.edge_lm import load_edge_lm  # noqa: E402
from netgpt.models import student  # noqa: E402
from netgpt.edge_agent.collab.engine import (EDGE_LM, FACTS_ONLY, SYSTEM_PROMPT, CloudClient,  # noqa: E402
                                             CollabEngine, cloud_generated_text)
from netgpt.edge_agent.collab.scoring import score_cloud_text  # noqa: E402
from bench.stats import boot_ci  # noqa: E402
from netgpt.edge_agent.location.cells import load_cells  # noqa: E402
from netgpt.edge_agent.location.fact_check import unsupported_facts  # noqa: E402
from netgpt.edge_agent.user_intent.classifier import UserIntentClassifier  # noqa: E402
from netgpt.stack.services import free_port  # noqa: E402

PROMPTS = ROOT / "edge_agent" / "data" / "collab_heldout.jsonl"
OUT = ROOT / "bench" / "out"
VARIANTS = ["cloud-only", "retrieval", "template", "netgpt", "netgpt-alt", "routed", "edge-only"]
LM_SHARE = ("template", "netgpt", "netgpt-alt", "routed")  # the variants whose prompt the edge completes


def start_cloud(max_wait_s: float = 180.0, slots: int = 1) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "netgpt"), "cloud", "serve", "--port", str(port),
                             "--slots", str(slots)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + max_wait_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc, f"http://127.0.0.1:{port}/v1"
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"netgpt cloud serve exited with {proc.returncode}")
        time.sleep(0.5)
    stop(proc)
    raise SystemExit("netgpt cloud serve did not become healthy in time")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


# --- one request per variant ------------------------------------------------------------------------------------------


def ask_retrieval(engine: CollabEngine, cell: str, text: str, service, now: float) -> EdgePromptResponse:
    """The retrieval baseline: the raw request, the edge's selected facts in the system message."""
    t0 = time.perf_counter()
    facts = select_facts(text, engine.cells[cell], now, service, engine.embed)
    system = retrieval_system(facts)
    edge_ms = (time.perf_counter() - t0) * 1000
    out = engine.cloud.ask(text, system)
    return EdgePromptResponse(source="edge:bench", request_id="retrieval", mode=CollabMode.cloud_only,
                              answer=out.text, completed_prompt=text, answered_by="cloud",
                              cloud_tokens_in=out.tokens_in, cloud_tokens_out=out.tokens_out, edge_ms=round(edge_ms, 2),
                              cloud_ms=round(out.ms, 2), total_ms=round((time.perf_counter() - t0) * 1000, 2),
                              flags=["retrieval_system_message"], location_facts=list(facts.kinds)), system


class RecordingCloud(CloudClient):
    """The engine's cloud client, remembering the system message of its last call (for the echo test)."""

    last_system: str = ""

    def ask(self, prompt, system=None, prefill=None):
        self.last_system = system or SYSTEM_PROMPT
        return super().ask(prompt, system, prefill)


def run_variant(variant: str, engines: dict, p: dict, service, now: float) -> tuple[EdgePromptResponse, str]:
    """One request; returns the response and the system message the cloud was sent ("" when it was not called)."""
    if variant == "retrieval":
        return ask_retrieval(engines["lm"], p["cell"], p["text"], service, now)
    engine = engines[{"template": "none", "netgpt-alt": "alt"}.get(variant, "lm")]
    mode = {"template": "netgpt", "netgpt-alt": "netgpt"}.get(variant, variant)
    req = EdgePromptRequest(user="bench", cell=p["cell"], text=p["text"], mode=CollabMode(mode))
    engine.cloud.last_system = ""
    resp = engine.handle(req, service=service, now=now)
    return resp, engine.cloud.last_system


def edge_source(resp: EdgePromptResponse) -> str:
    if resp.answered_by == "cloud":
        return "cloud"
    if FACTS_ONLY in resp.flags:
        return "facts-only"
    return "lm" if EDGE_LM in resp.flags else "lookup"


def build_engines(s: AgentSettings, cloud_url: str, edge_base: str, max_tokens: int, timeout_s: float,
                  threshold: float, alt_base: str = "none", slots: int = 1, adapter: Path | None = None,
                  alt_adapter: Path | None = None, constrained: bool = False) -> tuple[dict, object, object]:
    lm = load_edge_lm(edge_base, s.cache_dir, adapter, s.serving_backend, slots) if edge_base != "none" else None
    alt = (load_edge_lm(alt_base, s.cache_dir, alt_adapter, s.serving_backend, slots)
           if alt_base != "none" else None)
    cloud = RecordingCloud(cloud_url, s.cloud_model, timeout_s, max_tokens)
    cells = load_cells(s.cells_file)
    common = dict(route_threshold=threshold, edge_max_tokens=s.edge_max_tokens, draft_tokens=s.draft_tokens,
                  source="edge:bench", cloud_prefill=s.cloud_prefill, constrained=constrained)
    engines = {"lm": CollabEngine(cells, lm, cloud, **common), "none": CollabEngine(cells, None, cloud, **common)}
    if alt is not None:
        engines["alt"] = CollabEngine(cells, alt, cloud, **common)
    return engines, lm, alt


def run(args) -> dict:
    import torch  # heavy: loaded with the edge LM anyway

    settings = AgentSettings()
    torch.set_num_threads(1 if os.getloadavg()[0] >= 1.5 else 2)
    prompts = [json.loads(line) for line in Path(args.prompts).read_text().splitlines() if line.strip()]
    if args.limit:
        prompts = prompts[:args.limit]
    proc, cloud_url = (None, args.cloud_url) if args.cloud_url else start_cloud(slots=args.slots)
    rng = random.Random(0)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        alt_base = args.alt_edge_base if "netgpt-alt" in args.variants else "none"
        engines, lm, alt = build_engines(settings, cloud_url, args.edge_base or settings.edge_base, args.max_tokens,
                                         args.timeout, args.threshold, alt_base, args.slots, args.adapter,
                                         args.alt_adapter, args.constrained)
        if alt is None:
            args.variants = [v for v in args.variants if v != "netgpt-alt"]
        classify = None
        if args.intents:
            clf = UserIntentClassifier.load_or_train(settings)
            classify = lambda text: clf.predict([text])[0][0]  # noqa: E731
        engines["lm"].cloud.ask("hello")  # warm-up: first-call costs are not what the variants differ in
        rows = []
        for p in prompts:
            service = classify(p["text"]) if classify else None
            order = list(args.variants)
            rng.shuffle(order)
            for variant in order:
                now = time.time()
                resp, system = run_variant(variant, engines, p, service, now)
                ctx = engines["lm"].cells[p["cell"]]
                cloud_text = cloud_generated_text(resp)
                sent = f"{resp.completed_prompt}\n{system or ''}"
                score = score_cloud_text(cloud_text, p, ctx, now, sent=sent)
                src = edge_source(resp)
                edge_text = resp.answer if src == "lm" else ""
                completed_words = len(resp.completed_prompt.split())
                rows.append({"id": p["id"], "cell": p["cell"], "variant": variant, "now": now,
                             "ms": resp.total_ms, "edge_ms": resp.edge_ms, "cloud_ms": resp.cloud_ms,
                             "cloud_in": resp.cloud_tokens_in, "cloud_out": resp.cloud_tokens_out,
                             "source": src, "flags": resp.flags, **score.as_dict(),
                             "edge_lm_wrong": len(unsupported_facts(edge_text, ctx, now, also_allowed=p["text"]))
                             if edge_text else 0,
                             "lm_share": len(resp.edge_lm_draft.split()) / completed_words
                             if variant in LM_SHARE and completed_words else 0.0,
                             "user_share": len(p["text"].split()) / completed_words
                             if variant in LM_SHARE and completed_words else 0.0,
                             "draft": resp.edge_lm_draft, "answer": resp.answer, "cloud_text": cloud_text,
                             "completed": resp.completed_prompt, "system": system})
                r = rows[-1]
                print(f"{p['id']} {variant:10s} {resp.total_ms:7.0f} ms {src:10s} T={r['topic']:.0f} "
                      f"F={r['facts']:.2f} W={r['wrong']} {'ECHO ' if r['echo'] else ''}{resp.answer[:60]!r}",
                      flush=True)
    finally:
        if proc is not None:
            stop(proc)

    def card(m, base: str) -> dict:  # the adapter's card, or a task student's (the LM itself, no adapter)
        return m.server.adapters.get(m.adapter, {}) if m and m.adapter else student.card_of(Path(base)) if m else {}

    base = args.edge_base or settings.edge_base
    return {"rows": rows, "edge_lm": lm.name if lm else None, "adapter": lm.adapter if lm else None,
            "adapter_path": str(args.adapter or ""), "adapter_steps": card(lm, base).get("steps"),
            "adapter_metrics": card(lm, base).get("metrics"),
            "alt_edge_lm": alt.name if alt else None, "alt_adapter": alt.adapter if alt else None,
            "alt_adapter_path": str(args.alt_adapter or ""),
            "alt_adapter_steps": card(alt, args.alt_edge_base).get("steps"),
            "alt_adapter_metrics": card(alt, args.alt_edge_base).get("metrics"),
            "max_tokens": args.max_tokens, "slots": args.slots, "load_at_end": os.getloadavg()[0],
            "threshold": args.threshold, "n_prompts": len(prompts),
            "prompts": os.path.relpath(Path(args.prompts).resolve(), ROOT), "started": started,
            "variants": list(args.variants), "constrained": args.constrained}


# --- summary ----------------------------------------------------------------------------------------------------------


def by_variant(rows: list[dict], ids: list[str]) -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = {}
    for r in rows:
        out.setdefault(r["variant"], {})[r["id"]] = r
    return {v: d for v, d in out.items() if all(i in d for i in ids)}


def summarise(result: dict) -> dict:
    rows = result["rows"]
    ids = list(dict.fromkeys(r["id"] for r in rows))
    table = by_variant(rows, ids)
    base = table.get("cloud-only")
    out: dict = {"variants": {}, "differences": {}}
    for v in [v for v in VARIANTS if v in table]:
        r = [table[v][i] for i in ids]
        col = lambda key: np.array([x[key] for x in r], dtype=float)  # noqa: E731
        tokens = col("cloud_in").sum() + col("cloud_out").sum()
        base_tokens = (sum(x["cloud_in"] + x["cloud_out"] for x in base.values()) if base else float("nan"))
        sources = {s: sum(x["source"] == s for x in r) for s in ("cloud", "lookup", "lm", "facts-only")}
        answered = np.array([x["cloud_out"] for x in r if x["source"] == "cloud"], dtype=float)  # the cloud's answers
        out["variants"][v] = {
            "n": len(r), "sources": sources,
            "topic": boot_ci(col("topic")), "facts": boot_ci(col("facts")), "wrong": boot_ci(col("wrong")),
            "echo": float(col("echo").mean()),
            "p50_ms": boot_ci(col("ms"), np.median), "p95_ms": boot_ci(col("ms"), lambda a: np.percentile(a, 95)),
            "edge_p50_ms": float(np.median(col("edge_ms"))),
            "cloud_in": int(col("cloud_in").sum()), "cloud_out": int(col("cloud_out").sum()),
            "tokens_vs_cloud_only": float(tokens / base_tokens) if base else float("nan"),
            "lm_share": float(col("lm_share").mean()), "user_share": float(col("user_share").mean()),
            "drafts_used": int(sum(bool(x["draft"]) for x in r)),
            # answer length drives the cloud's time (cloud_time_fit below); NaN where the cloud answered nothing
            "answer_tokens_p50": float(np.median(answered)) if answered.size else float("nan"),
            "at_cap": float((answered >= result["max_tokens"]).mean()) if answered.size else float("nan"),
            "edge_lm_answers": sources["lm"],
            "edge_lm_wrong_per_lm_answer": float(sum(x["edge_lm_wrong"] for x in r) / sources["lm"])
            if sources["lm"] else float("nan"),
        }
    pairs = [("netgpt", "cloud-only", "facts"), ("netgpt", "retrieval", "topic"), ("netgpt", "template", "topic"),
             ("netgpt", "template", "facts"), ("netgpt", "retrieval", "facts"), ("retrieval", "cloud-only", "facts"),
             ("netgpt", "cloud-only", "topic"), ("template", "retrieval", "topic"), ("netgpt-alt", "template", "topic"),
             ("netgpt-alt", "template", "facts"), ("netgpt-alt", "netgpt", "topic")]
    for a, b, key in pairs:
        if a in table and b in table:
            diff = np.array([table[a][i][key] - table[b][i][key] for i in ids])
            out["differences"][f"{a} - {b}: {key}"] = boot_ci(diff)
    for v in ("netgpt", "netgpt-alt"):  # how often the LM's completion is not the rules' one (the LM's own choice)
        if v in table and "template" in table:
            out["variants"][v]["completion_differs_from_template"] = int(sum(
                table[v][i]["completed"] != table["template"][i]["completed"] for i in ids))
    cloud = [x for answers in table.values() for x in answers.values() if x["source"] == "cloud"]  # the table's rows
    if len(cloud) >= 3:  # where the cloud's time goes: least squares of its time on the tokens it read and wrote
        x = np.array([[1.0, r["cloud_in"], r["cloud_out"]] for r in cloud])
        fit = np.linalg.lstsq(x, np.array([r["cloud_ms"] for r in cloud]), rcond=None)[0]
        out["cloud_time_fit"] = {"n": len(cloud), "ms": float(fit[0]), "ms_per_prompt_token": float(fit[1]),
                                 "ms_per_answer_token": float(fit[2])}
    if "netgpt" in table and base:
        ms = np.array([[table["netgpt"][i]["ms"], base[i]["ms"]] for i in ids])  # paired: a prompt's two latencies
        out["latency_netgpt_over_cloud_only_p50"] = boot_ci(ms, lambda e: np.median(e[:, 0]) / np.median(e[:, 1]),
                                                            seed=1)
    return out


def ci(t: tuple[float, float, float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(t[0])} [{fmt.format(t[1])}, {fmt.format(t[2])}]"


def lm_label(result: dict, prefix: str) -> str:
    """The report title's name for the edge LM (prefix "") or the alternative one ("alt_"): with its LoRA adapter, or a
    task student, which takes none (run() records its card's steps in place of an adapter's)."""
    name, adapter, steps = (result.get(f"{prefix}{k}") for k in ("edge_lm", "adapter", "adapter_steps"))
    if name is None:
        return "none"
    if adapter:
        return f"{name} (+{adapter} {result.get(f'{prefix}adapter_path', '')}, {steps} steps)"
    return f"{name} (student, no adapter, {steps} steps)" if steps is not None else f"{name} (no adapter)"


def report(result: dict, summary: dict, markdown: bool) -> None:
    console = Console(width=200)
    title = (f"edge-cloud collaboration, {result['n_prompts']} prompts of {result['prompts']}, {result['started']}; "
             f"edge LM {lm_label(result, '')}, alt {lm_label(result, 'alt_')}; "
             f"{'constrained' if result.get('constrained') else 'free'} LM sentences; "
             f"cloud max_tokens {result['max_tokens']}; "
             "scored on cloud-generated text only, 95% bootstrap intervals over prompts")
    cols = ["variant", "topic", "facts used", "wrong facts/answer", "echo", "p50 ms", "p95 ms", "edge p50 ms",
            "cloud calls", "cloud tok in / out", "tokens vs cloud-only", "LM share of prompt"]
    table = Table(title=title)
    for c in cols:
        table.add_column(c, justify="right")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for v, s in summary["variants"].items():
        cells = [v, ci(s["topic"]), ci(s["facts"]), ci(s["wrong"]), f"{s['echo']:.2f}", ci(s["p50_ms"], "{:.0f}"),
                 ci(s["p95_ms"], "{:.0f}"), f"{s['edge_p50_ms']:.0f}", f"{s['sources']['cloud']}/{s['n']}",
                 f"{s['cloud_in']} / {s['cloud_out']}", f"{s['tokens_vs_cloud_only']:.2f}",
                 f"{s['lm_share']:.3f}" if v in LM_SHARE else "-"]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    console.print(table)
    route = Table(title="who answered (edge: lookup = exact from the cell's context, lm = the edge LM, facts-only = "
                        "the cell's facts, no answer); edge LM drafts kept in the completed prompt")
    for c in ("variant", "cloud", "lookup", "lm", "facts-only", "drafts kept", "user words share of prompt",
              "edge LM wrong facts / LM answer", "cloud answer tokens p50", "answers at the cap"):
        route.add_column(c, justify="right")
    for v, s in summary["variants"].items():
        src = s["sources"]
        route.add_row(v, str(src["cloud"]), str(src["lookup"]), str(src["lm"]), str(src["facts-only"]),
                      str(s["drafts_used"]), f"{s['user_share']:.2f}" if s["user_share"] else "-",
                      f"{s['edge_lm_wrong_per_lm_answer']:.2f}" if s["edge_lm_answers"] else "-",
                      *((f"{s['answer_tokens_p50']:.0f}", f"{s['at_cap']:.2f}") if s["sources"]["cloud"] else ("-", "-")))
    console.print(route)
    if "cloud_time_fit" in summary:
        f = summary["cloud_time_fit"]
        console.print(f"cloud time, least squares over its {f['n']} answers: {f['ms']:.0f} ms + "
                      f"{f['ms_per_prompt_token']:.1f} ms a prompt token + {f['ms_per_answer_token']:.1f} ms an "
                      "answer token")
    for v in ("netgpt", "netgpt-alt"):
        if "completion_differs_from_template" in summary["variants"].get(v, {}):
            console.print(f"{v}: completed prompt differs from template's on "
                          f"{summary['variants'][v]['completion_differs_from_template']}/{summary['variants'][v]['n']}"
                          " prompts")
    for name, t in summary["differences"].items():
        console.print(f"{name:34s} {ci(t)}")
    if "latency_netgpt_over_cloud_only_p50" in summary:
        console.print(f"{'netgpt p50 / cloud-only p50':34s} {ci(summary['latency_netgpt_over_cloud_only_p50'])}")
    if markdown:
        print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cloud-url", help="OpenAI-compatible endpoint; default: start `netgpt cloud serve`")
    ap.add_argument("--edge-base", default=None, help="Settings.edge_base by default (cloud-default: SmolLM2-135M-"
                    "Instruct), edge-default (the 14 M GPT-2), a model folder, or none")
    ap.add_argument("--adapter", type=Path, default=None, help="the edge LM's `complete` adapter folder "
                    "(default <cache>/adapters/complete)")
    ap.add_argument("--alt-edge-base", default="cloud-default", help="the netgpt-alt variant's edge base, or none")
    ap.add_argument("--alt-adapter", type=Path, default=None, help="the netgpt-alt variant's adapter folder "
                    "(default <cache>/adapters/complete)")
    ap.add_argument("--max-tokens", type=int, default=64, help="cloud answer length cap")
    ap.add_argument("--timeout", type=float, default=120.0, help="cloud call timeout, s")
    ap.add_argument("--threshold", type=float, default=1.0, help="routed: edge answers at this confidence "
                                                                 "(1.0: only exact context answers)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N prompts")
    ap.add_argument("--prompts", default=str(PROMPTS), help="prompt set (default: the held-out set; use "
                    "bench/collab_dev_prompts.jsonl to try changes without looking at the held-out set)")
    ap.add_argument("--variants", default=",".join(VARIANTS), type=lambda s: s.split(","),
                    help="comma-separated variants")
    ap.add_argument("--no-intents", dest="intents", action="store_false", help="skip the user-intent model")
    ap.add_argument("--slots", type=int, default=1, help="llama.cpp slots of the cloud it starts and of the edge LMs "
                    "(2 on 2 cores: one thread each, for a machine shared with another busy job)")
    ap.add_argument("--constrained", action="store_true", help="the edge LMs' sentences decoded among the task's "
                    "true sentences only (EdgeLM.choose) instead of free and checked")
    ap.add_argument("--markdown", action="store_true", help="also print the main table as markdown")
    ap.add_argument("--out", default=str(OUT / "collab.json"), help="where to write every answer and the summary")
    args = ap.parse_args()
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(sorted(unknown))}; expected {', '.join(VARIANTS)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the cloud server it started
    result = run(args)
    summary = summarise(result)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"summary": summary, **result}, indent=1, default=str))
    report(result, summary, args.markdown)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
