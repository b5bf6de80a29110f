"""The bench's scoring (edge_agent/collab/scoring.py) grades only text the cloud generated: an answer made only of
edge-supplied text (the prefill mode's opener, an exact lookup, a facts-only answer) scores 0 on every cloud metric,
even when it names every fact the prompt asks for; the same words written by the cloud score."""
from __future__ import annotations

import pytest

from netgpt.core.messages import CollabMode, EdgePromptRequest, EdgePromptResponse
from netgpt.edge_agent.collab.engine import CloudAnswer, CollabEngine, cloud_generated_text
from netgpt.edge_agent.collab.scoring import echo_share, facts_used, fact_values, score_cloud_text
from tests.edge_agent.conftest import FIXED_NOW

PROMPT = {"id": "t1", "cell": "c3", "text": "where can I try takoyaki tonight", "facts": ["city", "poi", "local_time"],
          "topic": ["takoyaki|street food|{poi}"]}


class ContinuesWithNothing:
    """A cloud that continues a begun answer with nothing at all (and answers a fresh question with `first`)."""

    def __init__(self, first: str = "Try Dotonbori in Osaka for takoyaki."):
        self.first = first

    def ask(self, prompt, system=None, prefill=None):
        return CloudAnswer(prefill if prefill else self.first, 50, 0 if prefill else 9, 5.0)


def respond(cells, text=PROMPT["text"], mode="netgpt", cloud=None, **options) -> EdgePromptResponse:
    engine = CollabEngine(cells, None, cloud, **options)
    return engine.handle(EdgePromptRequest(user="u", cell="c3", text=text, mode=CollabMode(mode)), now=FIXED_NOW)


def score(resp: EdgePromptResponse, prompt=PROMPT, cells=None):
    return score_cloud_text(cloud_generated_text(resp), prompt, cells["c3"], FIXED_NOW, sent=resp.completed_prompt)


def test_an_answer_of_the_edges_opener_alone_scores_zero(cells):
    resp = respond(cells, cloud=ContinuesWithNothing(), prefill_opener=True)
    assert resp.answered_by == "cloud" and resp.answer == "In Osaka, Japan, at 23:05 on Thursday, Dotonbori"
    s = score(resp, cells=cells)
    assert (s.topic, s.facts, s.wrong, s.words) == (0.0, 0.0, 0, 0)
    # The same words, written by the cloud, would score: the metrics are not blind, they look at the right text.
    same = score_cloud_text(resp.answer, PROMPT, cells["c3"], FIXED_NOW)
    assert same.topic == 1.0 and same.facts == 1.0


@pytest.mark.parametrize("case", ["lookup", "facts-only"])
def test_answers_the_edge_wrote_score_zero(cells, case):
    if case == "lookup":  # the exact answer from the cell's context: names the time and the city
        prompt = {**PROMPT, "text": "what time is it here?", "facts": ["local_time", "city"], "topic": ["{local_time}"]}
        resp = respond(cells, text=prompt["text"], mode="edge-only")
        assert "23:05" in resp.answer and "Osaka" in resp.answer
    else:  # no cloud, no LM: the cell's facts, places included
        prompt = PROMPT
        resp = respond(cells, cloud=None)
        assert "Dotonbori" in resp.answer and "Osaka" in resp.answer
    assert resp.answered_by == "edge"
    s = score(resp, prompt, cells)
    assert (s.topic, s.facts, s.wrong) == (0.0, 0.0, 0)


def test_the_clouds_own_answer_is_scored(cells):
    resp = respond(cells, cloud=ContinuesWithNothing())
    s = score(resp, cells=cells)
    assert s.topic == 1.0 and s.facts == pytest.approx(2 / 3) and s.wrong == 0 and not s.echo  # no clock named


def test_an_echo_of_the_prompt_is_not_an_answer(cells):
    resp = respond(cells, cloud=ContinuesWithNothing())
    facts = resp.completed_prompt[:-len(" where can I try takoyaki tonight?")]  # the sentence of facts the edge added
    assert facts.startswith("I am in Osaka, Japan")
    echoed = respond(cells, cloud=ContinuesWithNothing(first=facts))
    assert echo_share(cloud_generated_text(echoed), echoed.completed_prompt) == 1.0
    s = score(echoed, cells=cells)
    assert s.echo and (s.topic, s.facts) == (0.0, 0.0)


def test_fact_values_accept_true_spellings_only(cells):
    ctx = cells["c3"]
    assert "JST" in fact_values(ctx, FIXED_NOW)["timezone"] and "11:05" in fact_values(ctx, FIXED_NOW)["local_time"]
    assert facts_used("It is 23:05 in Osaka.", ["local_time", "city"], ctx, FIXED_NOW) == 1.0
    assert facts_used("It is 13:05 somewhere.", ["local_time"], ctx, FIXED_NOW) == 0.0  # "3:05" is not inside it
    wrong = score_cloud_text("Go to Lyon at 09:00.", PROMPT, ctx, FIXED_NOW)
    assert wrong.wrong == 2 and wrong.facts == 0.0
