"""The completion path on the real edge LM (SmolLM2-135M-Instruct + the `complete` adapter of the local cache, when
`make demo` or `netgpt models train --task complete` has built it): what the edge sends the cloud starts with the
user's words and states only facts of the cell, whether the LM's sentence or the rules' replaces it."""
from __future__ import annotations

import json

import pytest

from netgpt.core.settings import get_settings
from netgpt.edge_agent.collab.completion import complete_prompt, select_facts
from netgpt.edge_agent.location.fact_check import unsupported_facts
from tests.edge_agent.conftest import FIXED_NOW

CACHE = get_settings().cache_dir
ADAPTER = CACHE / "adapters" / "complete"


def built() -> bool:
    card = ADAPTER / "netgpt-adapter.json"
    return (CACHE / "models" / "cloud-default" / "netgpt-base.json").is_file() and card.is_file() and \
        json.loads(card.read_text()).get("base") == "cloud-default"


@pytest.mark.slow
@pytest.mark.skipif(not built(), reason="the SmolLM2 `complete` adapter is not built (netgpt models train --task complete)")
def test_the_real_edge_lm_completes_with_true_facts_only(cells):
    from netgpt.edge_agent.collab.edge_lm import load_edge_lm

    lm = load_edge_lm("cloud-default", CACHE, ADAPTER, "llamacpp")
    assert lm.adapter == "complete"
    used = 0
    for text, cell in [("where can I try takoyaki tonight", "c3"), ("tell me a joke", "c1"),
                       ("a quiet park for a picnic", "c1")]:
        ctx = cells[cell]
        done = complete_prompt(select_facts(text, ctx, FIXED_NOW), lm)
        assert done.text.startswith(text) and ctx.city in done.text, done.text
        assert unsupported_facts(done.text, ctx, FIXED_NOW) == [], done.text
        assert done.edge_tokens_out > 0
        used += bool(done.draft)
    assert used >= 1  # the trained adapter's sentence passes the grounding check at least once
