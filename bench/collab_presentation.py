"""How the completed prompt is presented to the cloud, on the DEV prompts only (never the held-out set).

    .venv/bin/python bench/collab_presentation.py

The diagnosis behind the completed prompt's order (issue 12: netgpt answered the topic less often than retrieval):
the same facts, the rules' sentence (no edge LM, so only the presentation differs), sent five ways to the cloud
(`netgpt cloud serve --slots 2`, SmolLM2-135M-Instruct, greedy, 64 tokens), every way on every prompt in a shuffled
order per prompt, scored like bench/collab.py (edge_agent/collab/scoring.py):
  cloud-only           the raw request, the generic system message
  retrieval            the raw request, the facts in the system message
  A-after              the request, then the sentence of facts (the completed prompt before this diagnosis)
  B-first              the sentence of facts, then the request (the completed prompt now)
  C-after-generic-sys  A-after with the generic system message instead of the one naming the place
Prints mean topic, echo, facts used, wrong facts and the cloud's p50 ms per way; every answer in
bench/out/collab_presentation.json.
"""
from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402

import collab as bench  # noqa: E402  (bench/collab.py: starting and stopping the cloud)
from netgpt.edge_agent.agent import AgentSettings  # noqa: E402
from netgpt.edge_agent.collab import completion as C  # noqa: E402
from netgpt.edge_agent.collab.engine import SYSTEM_PROMPT, CloudClient  # noqa: E402
from netgpt.edge_agent.collab.scoring import score_cloud_text  # noqa: E402
from netgpt.edge_agent.location.cells import load_cells  # noqa: E402
from netgpt.edge_agent.user_intent.classifier import UserIntentClassifier  # noqa: E402

WAYS = ["cloud-only", "retrieval", "A-after", "B-first", "C-after-generic-sys"]


def present(way: str, f: C.RequestFacts) -> tuple[str, str]:
    """(user message, system message) for one way."""
    sentence, request = C.template_sentence(f).strip() + C.rule_additions(f), C.ended(f.request)
    return {"cloud-only": (f.request, SYSTEM_PROMPT), "retrieval": (f.request, C.retrieval_system(f)),
            "A-after": (f"{request} {sentence}", C.cloud_system(f)),
            "B-first": (f"{sentence} {request}", C.cloud_system(f)),
            "C-after-generic-sys": (f"{request} {sentence}", SYSTEM_PROMPT)}[way]


def main() -> None:
    s = AgentSettings()
    prompts = [json.loads(line) for line in (ROOT / "bench" / "collab_dev_prompts.jsonl").read_text().splitlines()
               if line.strip()]
    cells = load_cells(s.cells_file)
    clf = UserIntentClassifier.load_or_train(s)
    proc, url = bench.start_cloud(slots=2)
    cloud = CloudClient(url, s.cloud_model, 120, 64)
    rows, rng = [], random.Random(0)
    try:
        cloud.ask("hello")  # warm-up
        for p in prompts:
            service = clf.predict([p["text"]])[0][0]
            order = list(WAYS)
            rng.shuffle(order)
            for way in order:
                now = time.time()
                f = C.select_facts(p["text"], cells[p["cell"]], now, service)
                text, system = present(way, f)
                out = cloud.ask(text, system)
                score = score_cloud_text(out.text, p, cells[p["cell"]], now, sent=f"{text}\n{system}")
                rows.append({"id": p["id"], "v": way, "sent": text, "system": system, "answer": out.text,
                             "ms": out.ms, **score.as_dict()})
                print(p["id"], way, f"T={score.topic:.0f} E={score.echo:d}", repr(out.text[:90]), flush=True)
    finally:
        bench.stop(proc)
    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    (ROOT / "bench" / "out" / "collab_presentation.json").write_text(json.dumps(rows, indent=1))
    for way in WAYS:
        r = [x for x in rows if x["v"] == way]
        mean = lambda k: np.mean([x[k] for x in r])  # noqa: E731
        print(f"{way:22s} topic {mean('topic'):.2f} echo {mean('echo'):.2f} facts {mean('facts'):.2f} "
              f"wrong {mean('wrong'):.2f} ms {np.median([x['ms'] for x in r]):.0f}")


if __name__ == "__main__":
    main()
