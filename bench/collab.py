"""Edge-cloud collaboration benchmark: the hand-written held-out prompts (edge_agent/data/collab_prompts.jsonl, never
trained on) through the four modes: netgpt, cloud-only, edge-only, routed.

    .venv/bin/python bench/collab.py [--cloud-url http://127.0.0.1:8000/v1] [--edge-base edge-default|none|DIR]

Without --cloud-url it starts `netgpt cloud serve` (SmolLM2-135M-Instruct) on a free port and stops it by PID at the
end. The edge agent's engine runs in this process (no HTTP hop to the agent; the cloud is called over HTTP).

Per mode: p50/p95 latency, cloud tokens in/out, calls that reached the cloud, answers asked again because they ignored
the place (edge_agent/collab/engine.py: the second call continues the begun opener), and
  personalisation  share of each prompt's expected location facts (city, country, local time, weekday, time zone, a
                   point of interest) stated correctly in the final answer
  wrong facts      places/times/dates in the answer that the cell's context contradicts (location_check), per answer
  quality          share of prompts whose answer is on topic: it matches the prompt's hand-written topic pattern
                   (placeholders like {local_time} are filled from the cell's context at request time); an answer
                   flagged edge_facts_only (the edge could not answer, it states the cell's facts) scores 0
Prints a table and writes bench/out/collab.png and bench/out/collab.json. torch and matplotlib are imported where they
are used, so that --help answers at once.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
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

from netgpt.core.messages import CollabMode, EdgePromptRequest  # noqa: E402
from netgpt.edge_agent.agent import AgentSettings  # noqa: E402
from netgpt.edge_agent.collab.edge_lm import load_edge_lm  # noqa: E402
from netgpt.edge_agent.collab.engine import CloudClient, CollabEngine  # noqa: E402
from netgpt.edge_agent.location.cells import load_cells  # noqa: E402
from netgpt.edge_agent.location.fact_check import normalise, unsupported_facts  # noqa: E402
from netgpt.edge_agent.user_intent.classifier import UserIntentClassifier  # noqa: E402

PROMPTS = ROOT / "edge_agent" / "data" / "collab_prompts.jsonl"
OUT = ROOT / "bench" / "out"
MODES = ["cloud-only", "netgpt", "edge-only", "routed"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cloud(max_wait_s: float = 180.0) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "netgpt"), "cloud", "serve", "--port", str(port)],
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


# --- scoring ----------------------------------------------------------------------------------------------------------


def fact_values(ctx, now: float) -> dict[str, list[str]]:
    """Accepted spellings of each fact at `now` (local time also a minute either side, and on a 12-hour clock)."""
    times = []
    for delta in (-60, 0, 60):
        t = ctx.local_time(now + delta)
        times += [t.strftime("%H:%M"), f"{t.hour % 12 or 12}:{t.minute:02d}"]
    f = ctx.facts(now)
    return {"city": [ctx.city], "country": [ctx.country], "local_time": times, "weekday": [f["weekday"]],
            "timezone": [ctx.timezone], "poi": list(ctx.points_of_interest),
            "coordinates": [f["coordinates"].split(",")[0]]}


def personalisation(answer: str, expected: list[str], values: dict[str, list[str]]) -> float:
    text = normalise(answer)
    hits = [any(normalise(v) in text for v in values[kind]) for kind in expected]
    return sum(hits) / len(hits) if hits else 1.0


def on_topic(answer: str, topic: list[str], ctx, now: float) -> float:
    f = ctx.facts(now)
    fill = {"local_time": "|".join(fact_values(ctx, now)["local_time"]), "city": ctx.city, "country": ctx.country,
            "weekday": f["weekday"], "timezone": ctx.timezone, "poi": "|".join(ctx.points_of_interest)}
    text = normalise(answer)
    groups = [normalise(g.format(**fill)) for g in topic]
    hits = [any(alt and alt in text for alt in g.split("|")) for g in groups]
    return sum(hits) / len(hits) if hits else 1.0


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# --- run --------------------------------------------------------------------------------------------------------------


def build_engine(s: AgentSettings, cloud_url: str, edge_base: str, max_tokens: int, timeout_s: float,
                 threshold: float):
    lm = load_edge_lm(edge_base, s.cache_dir, None, s.serving_backend) if edge_base != "none" else None
    cloud = CloudClient(cloud_url, s.cloud_model, timeout_s, max_tokens)
    return CollabEngine(load_cells(s.cells_file), lm, cloud, route_threshold=threshold, edge_max_tokens=s.edge_max_tokens,
                        draft_tokens=s.draft_tokens, source="edge:bench", cloud_prefill=s.cloud_prefill), lm


def run(args) -> dict:
    import torch  # heavy: see the module docstring

    settings = AgentSettings()
    torch.set_num_threads(1 if os.getloadavg()[0] >= 1.5 else 2)
    prompts = [json.loads(line) for line in Path(args.prompts).read_text().splitlines() if line.strip()]
    if args.limit:
        prompts = prompts[:args.limit]
    proc, cloud_url = (None, args.cloud_url) if args.cloud_url else start_cloud()
    try:
        engine, lm = build_engine(settings, cloud_url, args.edge_base, args.max_tokens, args.timeout, args.threshold)
        classify = None
        if args.intents:
            clf = UserIntentClassifier.load_or_train(settings)
            classify = lambda text: clf.predict([text])[0][0]  # noqa: E731
        engine.cloud.ask("hello")  # warm-up: first-call costs are not what the modes differ in
        rows = []
        for p in prompts:
            service = classify(p["text"]) if classify else None
            for mode in args.modes:
                now = time.time()
                resp = engine.handle(EdgePromptRequest(user="bench", cell=p["cell"], text=p["text"],
                                                       mode=CollabMode(mode)), service=service, now=now)
                ctx = engine.cells[p["cell"]]
                rows.append({"id": p["id"], "mode": mode, "ms": resp.total_ms, "edge_ms": resp.edge_ms,
                             "cloud_in": resp.cloud_tokens_in, "cloud_out": resp.cloud_tokens_out,
                             "cloud": resp.answered_by == "cloud", "flags": resp.flags,
                             "reasked": "cloud_reasked_with_opener" in resp.flags,
                             "edge_confidence": resp.edge_confidence,
                             "personal": personalisation(resp.answer, p["facts"], fact_values(ctx, now)),
                             # A facts-only answer (the edge could not answer) is not on topic, whatever it names.
                             "quality": 0.0 if "edge_facts_only" in resp.flags else
                             on_topic(resp.answer, p["topic"], ctx, now),
                             "wrong": len(unsupported_facts(resp.answer, ctx, now, also_allowed=p["text"])),
                             "answer": resp.answer, "completed": resp.completed_prompt})
                print(f"{p['id']} {mode:10s} {resp.total_ms:7.0f} ms  cloud={rows[-1]['cloud']!s:5s} "
                      f"P={rows[-1]['personal']:.2f} Q={rows[-1]['quality']:.0f}  {resp.answer[:70]!r}", flush=True)
    finally:
        if proc is not None:
            stop(proc)
    return {"rows": rows, "edge_lm": lm.name if lm else None, "adapter": lm.adapter if lm else None,
            "max_tokens": args.max_tokens, "threshold": args.threshold, "n_prompts": len(prompts)}


def summarise(result: dict) -> dict[str, dict]:
    rows = result["rows"]
    out = {}
    for mode in [m for m in MODES if any(x["mode"] == m for x in rows)]:
        r = [x for x in rows if x["mode"] == mode]
        out[mode] = {"p50_ms": pct([x["ms"] for x in r], 50), "p95_ms": pct([x["ms"] for x in r], 95),
                     "edge_p50_ms": pct([x["edge_ms"] for x in r], 50),
                     "cloud_in": sum(x["cloud_in"] for x in r), "cloud_out": sum(x["cloud_out"] for x in r),
                     "cloud_calls": sum(x["cloud"] for x in r), "n": len(r),
                     "reasked": sum(x.get("reasked", False) for x in r),
                     "personalisation": sum(x["personal"] for x in r) / len(r),
                     "wrong_per_answer": sum(x["wrong"] for x in r) / len(r),
                     "quality": sum(x["quality"] for x in r) / len(r)}
    return out


def report(result: dict, summary: dict[str, dict]) -> None:
    import matplotlib  # heavy, and the backend must be chosen before pyplot is imported

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = Table(title=f"edge-cloud collaboration: {result['n_prompts']} held-out prompts, edge LM "
                        f"{result['edge_lm']} (+{result['adapter']}), cloud max_tokens {result['max_tokens']}")
    for col in ("mode", "p50 ms", "p95 ms", "edge p50 ms", "cloud calls", "re-asked", "cloud tok in", "cloud tok out",
                "personalisation", "wrong facts/answer", "quality"):
        table.add_column(col, justify="right")
    for mode, s in summary.items():
        table.add_row(mode, f"{s['p50_ms']:.0f}", f"{s['p95_ms']:.0f}", f"{s['edge_p50_ms']:.0f}",
                      f"{s['cloud_calls']}/{s['n']}", str(s["reasked"]), str(s["cloud_in"]), str(s["cloud_out"]),
                      f"{s['personalisation']:.2f}", f"{s['wrong_per_answer']:.2f}", f"{s['quality']:.2f}")
    console = Console(width=160)
    console.print(table)
    base, ng, rt = summary["cloud-only"], summary["netgpt"], summary["routed"]
    tokens = lambda s: s["cloud_in"] + s["cloud_out"]  # noqa: E731
    checks = [
        ("personalisation netgpt >= 0.9", ng["personalisation"], ng["personalisation"] >= 0.9),
        ("netgpt p50 latency / cloud-only p50 <= 1.20", ng["p50_ms"] / base["p50_ms"], ng["p50_ms"] <= 1.2 * base["p50_ms"]),
        ("routed cloud tokens cut vs netgpt >= 0.40", 1 - tokens(rt) / max(tokens(ng), 1), tokens(rt) <= 0.6 * tokens(ng)),
        ("routed cloud tokens cut vs cloud-only", 1 - tokens(rt) / max(tokens(base), 1), None),
        ("routed quality - netgpt quality (>= 0: equal)", rt["quality"] - ng["quality"], rt["quality"] >= ng["quality"]),
        ("routed share of cloud calls avoided", 1 - rt["cloud_calls"] / rt["n"], None),
    ]
    for name, value, ok in checks:
        mark = "" if ok is None else ("  MET" if ok else "  MISSED")
        console.print(f"{name:48s} {value:6.2f}{mark}")

    OUT.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
    modes = list(summary)
    panels = [("latency p50 / p95 (s)", [summary[m]["p50_ms"] / 1000 for m in modes],
               [summary[m]["p95_ms"] / 1000 for m in modes]),
              ("cloud tokens (in + out)", [tokens(summary[m]) for m in modes], None),
              ("personalisation", [summary[m]["personalisation"] for m in modes], None),
              ("quality (on topic)", [summary[m]["quality"] for m in modes], None)]
    for ax, (title, values, upper) in zip(axes, panels):
        ax.bar(modes, values, color=["#888", "#2a7", "#c84", "#37c"])
        if upper:
            ax.scatter(modes, upper, color="k", marker="_", s=200, label="p95")
            ax.legend(fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelsize=7, rotation=20)
    fig.tight_layout()
    fig.savefig(OUT / "collab.png", dpi=80)
    (OUT / "collab.json").write_text(json.dumps({"summary": summary, **result}, indent=1, default=str))
    console.print(f"wrote {OUT / 'collab.png'} and {OUT / 'collab.json'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cloud-url", help="OpenAI-compatible endpoint; default: start `netgpt cloud serve`")
    ap.add_argument("--edge-base", default="edge-default", help="edge-default, a model folder, or none")
    ap.add_argument("--max-tokens", type=int, default=64, help="cloud answer length cap")
    ap.add_argument("--timeout", type=float, default=120.0, help="cloud call timeout, s")
    ap.add_argument("--threshold", type=float, default=1.0, help="routed: edge answers at this confidence "
                                                                 "(1.0: only exact context answers)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N prompts")
    ap.add_argument("--prompts", default=str(PROMPTS), help="prompt set (default: the held-out set; use "
                    "bench/collab_dev_prompts.jsonl to try changes without looking at the held-out set)")
    ap.add_argument("--modes", default=",".join(MODES), type=lambda s: s.split(","), help="comma-separated modes")
    ap.add_argument("--no-intents", dest="intents", action="store_false", help="skip the user-intent model")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the cloud server it started
    result = run(args)
    summary = summarise(result)
    if set(summary) == set(MODES):
        report(result, summary)
    else:  # a partial run (a subset of modes): the numbers only, no targets and no plot
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "collab_partial.json").write_text(json.dumps({"summary": summary, **result}, indent=1, default=str))
        for mode, s in summary.items():
            print(f"{mode}: " + ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in s.items()))


if __name__ == "__main__":
    main()
