"""bench/collab.summarise: where the cloud's time goes (a least-squares fit on the tokens it read and wrote) and how
often its answers stop at the length cap, per variant; only the cloud's own answers enter the fit."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.collab import summarise  # noqa: E402


def row(i: int, variant: str, tokens_in: int, tokens_out: int, source: str = "cloud") -> dict:
    cloud_ms = 40.0 + 5.0 * tokens_in + 12.0 * tokens_out if source == "cloud" else 0.0
    return {"id": f"p{i}", "variant": variant, "ms": cloud_ms + 1, "edge_ms": 1.0, "cloud_ms": cloud_ms,
            "cloud_in": tokens_in if source == "cloud" else 0, "cloud_out": tokens_out if source == "cloud" else 0,
            "source": source, "topic": 1.0, "facts": 0.0, "wrong": 0, "echo": False, "lm_share": 0.0,
            "user_share": 0.0, "draft": "", "edge_lm_wrong": 0, "completed": "x"}


def test_cloud_time_fit_and_answers_at_the_cap():
    rng = np.random.default_rng(0)
    rows = []
    for i in range(20):
        rows.append(row(i, "cloud-only", int(rng.integers(20, 40)), int(rng.integers(10, 65))))
        rows.append(row(i, "template", int(rng.integers(50, 80)), 64 if i % 4 else 30))
        rows.append(row(i, "routed", 40, 64) if i % 2 else row(i, "routed", 0, 0, source="lookup"))
        rows.append(row(i, "edge-only", 0, 0, source="lookup"))  # the edge answered: 0 ms of cloud, out of the fit
    s = summarise({"rows": rows, "max_tokens": 64})
    fit = s["cloud_time_fit"]
    assert fit["n"] == 50
    assert np.allclose([fit["ms"], fit["ms_per_prompt_token"], fit["ms_per_answer_token"]], [40, 5, 12])
    assert s["variants"]["template"]["at_cap"] == 0.75 and s["variants"]["template"]["answer_tokens_p50"] == 64
    assert s["variants"]["routed"]["at_cap"] == 1.0  # over its 10 cloud answers, not its 20 rows
    assert np.isnan(s["variants"]["edge-only"]["at_cap"])  # no cloud answer: nothing to count, not 0
