"""The completion path on the real edge LM (SmolLM2-135M-Instruct, once `netgpt models prepare` has built it, + the
shipped `complete` adapter, models/adapters/complete, or else one of the local cache): what the
edge sends the cloud ends with the user's words and states only facts of the cell, whether the LM's sentence or the
rules' replaces it; a cell's context is evaluated once, whatever other requests come in between."""
from __future__ import annotations

import json

import pytest

from netgpt.core.settings import get_settings
from netgpt.edge_agent.collab.completion import COMPLETION_TOKENS, complete_prompt, ended, lm_input, select_facts
from netgpt.edge_agent.location.fact_check import unsupported_facts
from netgpt.models.lora import SHIPPED_ADAPTERS
from tests.edge_agent.conftest import FIXED_NOW

CACHE = get_settings().cache_dir


def built(adapter) -> bool:
    card = adapter / "netgpt-adapter.json"
    return (CACHE / "models" / "cloud-default" / "netgpt-base.json").is_file() and card.is_file() and \
        json.loads(card.read_text()).get("base") == "cloud-default"


# The shipped adapter first (the same weights on every machine); a cache's, trained within `make demo`'s 5-minute cap,
# varies with the machine's load (17 steps gave 4 grounded sentences for 10 requests like these, most repeating a
# phrase; 27 steps gave 9).
ADAPTER = next((path for path in (SHIPPED_ADAPTERS / "complete", CACHE / "adapters" / "complete",
                                  CACHE / "adapters" / "complete-full") if built(path)), CACHE / "adapters" / "complete")
REQUESTS = [("where can I try takoyaki tonight", "c3"), ("tell me a joke", "c1"), ("a quiet park for a picnic", "c1")]


@pytest.mark.slow
@pytest.mark.skipif(not built(ADAPTER), reason="the SmolLM2 `complete` adapter is not built (netgpt models train --task complete)")
def test_the_real_edge_lm_completes_with_true_facts_only(cells):
    from netgpt.edge_agent.collab.edge_lm import load_edge_lm

    lm = load_edge_lm("cloud-default", CACHE, ADAPTER, "llamacpp")
    assert lm.adapter == "complete"
    used = 0
    for text, cell in REQUESTS:
        ctx = cells[cell]
        done = complete_prompt(select_facts(text, ctx, FIXED_NOW), lm)
        assert done.text.endswith(f" {ended(text)}") and ctx.city in done.text, done.text
        assert unsupported_facts(done.text, ctx, FIXED_NOW) == [], done.text
        assert done.edge_tokens_out > 0
        used += bool(done.draft)
    assert used >= 1  # the trained adapter's sentence passes the grounding check at least once


@pytest.mark.slow
@pytest.mark.skipif(not built(ADAPTER), reason="the SmolLM2 `complete` adapter is not built (netgpt models train --task complete)")
def test_a_cells_context_is_evaluated_once_across_other_requests(cells, monkeypatch):
    """The second request of a cell, after a request of another cell and an answer of the base without the adapter
    (an edge-only request), evaluates little more than its own request (the cell's saved context is restored), and
    the LM writes what a fresh server writes."""
    from netgpt.edge_agent.collab.edge_lm import load_edge_lm

    lm, fresh = (load_edge_lm("cloud-default", CACHE, ADAPTER, "llamacpp") for _ in range(2))
    slot = lm.server._all[0]
    evaluated = []
    decode = slot.llm._ctx.decode
    monkeypatch.setattr(slot.llm._ctx, "decode", lambda batch: evaluated.append(batch.n_tokens()) or decode(batch))
    lm.generate(lm_input(select_facts("where can I try takoyaki tonight", cells["c3"], FIXED_NOW)), COMPLETION_TOKENS)
    lm.generate(lm_input(select_facts("a quiet park for a picnic", cells["c1"], FIXED_NOW)), COMPLETION_TOKENS)
    lm.answer("tell me a joke")
    evaluated.clear()
    prompt = lm_input(select_facts("recommend a bar for later", cells["c3"], FIXED_NOW))
    got = lm.generate(prompt, COMPLETION_TOKENS)
    assert len(lm.server.tokenizer(prompt)["input_ids"]) >= 100 and evaluated[0] <= 16, evaluated[:3]
    assert got.text == fresh.generate(prompt, COMPLETION_TOKENS).text and got.tokens_out > 0
