"""The edge LM's completion time with and without the saved prompt prefixes of the llama.cpp backend.

    .venv/bin/python bench/edge_lm_latency.py [--adapter DIR] [--prompts FILE] [--slots 2]

On the dev prompts (bench/collab_dev_prompts.jsonl; never the held-out set), each request's completion sentence is
written by the edge LM (SmolLM2-135M-Instruct + its `complete` adapter) twice over the whole set: once with no saved
prompts (the backend before them: only the last prompt's cache, lost when another adapter or cell came in between),
once with them. Before every call the slots' live cache is emptied, as after a request with another adapter (an
edge-only answer, which the bench and the edge node interleave): what is measured is what the saved cells of the
cell's context save. Both passes must write the same sentences.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the Hugging Face libraries' switch: never reach for a model hub

import numpy as np  # noqa: E402

from netgpt.edge_agent.agent import AgentSettings  # noqa: E402
from netgpt.edge_agent.collab.completion import COMPLETION_TOKENS, lm_input, select_facts  # noqa: E402
from netgpt.edge_agent.collab.edge_lm import load_edge_lm  # noqa: E402
from netgpt.edge_agent.location.cells import load_cells  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", type=Path, default=None, help="the `complete` adapter (default <cache>/adapters/complete)")
    ap.add_argument("--prompts", default=str(ROOT / "bench" / "collab_dev_prompts.jsonl"))
    ap.add_argument("--slots", type=int, default=2, help="llama.cpp slots (2 on 2 cores: one thread each, as the "
                    "collaboration bench runs)")
    args = ap.parse_args()
    s = AgentSettings()
    prompts = [json.loads(line) for line in Path(args.prompts).read_text().splitlines() if line.strip()]
    cells = load_cells(s.cells_file)
    lm = load_edge_lm(s.edge_base, s.cache_dir, args.adapter, "llamacpp", slots=args.slots)
    now = time.time()
    inputs = [lm_input(select_facts(p["text"], cells[p["cell"]], now)) for p in prompts]
    texts = {}
    for name, keep in (("no saved prompts", False), ("saved prompts", True)):
        for slot in lm.server._all:
            slot.saved.clear()
        ms, texts[name] = [], []
        for prompt in inputs:
            for slot in lm.server._all:
                slot.llm.n_tokens = 0  # as after another adapter's request
                if not keep:
                    slot.saved.clear()
            t0 = time.perf_counter()
            texts[name].append(lm.generate(prompt, max_tokens=COMPLETION_TOKENS).text)
            ms.append((time.perf_counter() - t0) * 1000)
        print(f"{name:18s} p50 {np.median(ms):5.0f} ms  mean {np.mean(ms):5.0f}  p95 {np.percentile(ms, 95):5.0f}  "
              f"({len(ms)} completions)", flush=True)
    same = sum(a == b for a, b in zip(*texts.values()))
    tokens = np.median([len(lm.server.tokenizer(p)["input_ids"]) for p in inputs])
    print(f"same sentence in both passes: {same}/{len(inputs)}; prompt tokens p50 {tokens:.0f}; "
          f"{lm.server.threads} thread(s) per slot; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
