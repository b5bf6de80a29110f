"""The collaboration engine alone, with a scripted cloud and scripted edge LMs: the repair of answers that ignore the
user's place (the real cloud service's continuation is tested in tests/models/test_cloud_service.py), the edge's own
answers, and one fact selection per request."""
from __future__ import annotations

import pytest

from netgpt.core.messages import CollabMode, EdgePromptRequest
from netgpt.edge_agent.collab import completion
from netgpt.edge_agent.collab.completion import LMText
from netgpt.edge_agent.collab.engine import REASKED, CloudAnswer, CollabEngine
from netgpt.edge_agent.user_intent.classifier import embed_texts
from tests.edge_agent.conftest import FIXED_NOW


class ScriptedCloud:
    """Answers `first` to a fresh question and continues a begun answer with `then`; records every call."""

    def __init__(self, first: str, then: str = " is a fine choice."):
        self.first, self.then, self.calls = first, then, []

    def ask(self, prompt, system=None, prefill=None):
        self.calls.append(prefill)
        text = prefill + self.then if prefill else self.first
        return CloudAnswer(text, 50, 10, 5.0)


def handle(cells, cloud, mode="netgpt", prefill=True, text="where can I try takoyaki tonight"):
    engine = CollabEngine(cells, None, cloud, cloud_prefill=prefill)
    return engine.handle(EdgePromptRequest(user="u", cell="c3", text=text, mode=CollabMode(mode)), now=FIXED_NOW)


def test_an_answer_ignoring_the_place_is_asked_again_begun_by_the_opener(cells):
    cloud = ScriptedCloud("I'm sorry, as a Japanese-English assistant I cannot help.")  # "Japanese" is not "Japan"
    resp = handle(cells, cloud)
    assert cloud.calls == [None, "In Osaka, Japan, at 23:05 on Thursday, Dotonbori"]
    assert resp.answer == "In Osaka, Japan, at 23:05 on Thursday, Dotonbori is a fine choice." and REASKED in resp.flags
    assert (resp.cloud_tokens_in, resp.cloud_tokens_out) == (100, 20)  # both calls are counted


def test_an_answer_that_names_the_place_is_kept(cells):
    cloud = ScriptedCloud("In Osaka, try Dotonbori.")
    resp = handle(cells, cloud)
    assert cloud.calls == [None] and resp.answer == "In Osaka, try Dotonbori." and REASKED not in resp.flags


def test_without_continuation_support_there_is_no_second_call(cells):
    cloud = ScriptedCloud("I'm sorry, I cannot help.")
    resp = handle(cells, cloud, prefill=False)
    assert cloud.calls == [None] and resp.answer == "I'm sorry, I cannot help."
    assert handle(cells, ScriptedCloud("x"), mode="cloud-only").flags == []  # the raw prompt: nothing to repair


def test_routed_mode_sends_the_opener_as_the_start_of_the_answer(cells):
    cloud = ScriptedCloud("never used")
    resp = handle(cells, cloud, mode="routed")
    assert cloud.calls == ["In Osaka, Japan, at 23:05 on Thursday, Dotonbori"] and resp.answer.startswith(cloud.calls[0])
    assert "23:05" not in resp.completed_prompt  # the clock travels in the opener only


class InventingLM:
    """An edge LM that answers with a place and a time the cell's context contradicts."""

    name, adapter = "inventing", None

    def generate(self, prompt, max_tokens=48, stop_at_sentence=False):
        return LMText("Try the harbour. Paris is nice at 09:00.", 20, 10, -0.01)


class AllInvented(InventingLM):
    """An edge LM whose every sentence the cell's context contradicts."""

    def generate(self, prompt, max_tokens=48, stop_at_sentence=False):
        return LMText("Paris is nice at 09:00.", 20, 8, -0.01)


def test_the_edge_lms_invented_facts_are_removed_from_its_answer(cells):
    engine = CollabEngine(cells, InventingLM(), ScriptedCloud("In Osaka, yes."), route_threshold=0.5)
    req = EdgePromptRequest(user="u", cell="c3", text="write me a haiku", mode=CollabMode.edge_only)
    resp = engine.handle(req, now=FIXED_NOW)
    assert resp.answer == "Try the harbour." and "edge_answer_fact_removed" in resp.flags
    # In routed mode an answer that needed repair is not trusted: the cloud answers.
    routed = engine.handle(req.model_copy(update={"mode": CollabMode.routed}), now=FIXED_NOW)
    assert routed.answered_by == "cloud" and routed.edge_confidence == 0.0


def test_an_edge_answer_with_nothing_reliable_left_says_what_the_node_knows(cells):
    engine = CollabEngine(cells, AllInvented(), None)  # no cloud either
    req = EdgePromptRequest(user="u", cell="c3", text="where can I try takoyaki", mode=CollabMode.netgpt)
    resp = engine.handle(req, now=FIXED_NOW)
    assert resp.answered_by == "edge" and "cloud_unreachable_edge_answer" in resp.flags
    assert resp.answer.startswith("The edge model has no reliable answer to this. What this node knows: You are in "
                                  "Osaka, Japan; the local time is 23:05.")
    assert "Places nearby: Dotonbori (" in resp.answer and "Paris" not in resp.answer
    bare = CollabEngine(cells, None, None).handle(req, now=FIXED_NOW)
    assert bare.answer.startswith("This edge node has no language model to answer this. What this node knows:")
    assert "edge_facts_only" in resp.flags and "edge_facts_only" in bare.flags


def test_routed_with_the_cloud_down_runs_the_edge_model_once(cells):
    class Counting(InventingLM):
        calls = 0

        def generate(self, prompt, max_tokens=48, stop_at_sentence=False):
            Counting.calls += 1
            return super().generate(prompt, max_tokens, stop_at_sentence)

    engine = CollabEngine(cells, Counting(), None, route_threshold=1.0)  # never confident enough: the cloud is asked
    req = EdgePromptRequest(user="u", cell="c3", text="write me a haiku", mode=CollabMode.routed)
    resp = engine.handle(req, now=FIXED_NOW)
    assert resp.answered_by == "edge" and "cloud_unreachable_edge_answer" in resp.flags
    assert Counting.calls == 1 and (resp.edge_tokens_in, resp.edge_tokens_out) == (20, 10)


@pytest.mark.parametrize("text", ["where can I try takoyaki tonight", "what time is it here?"])
@pytest.mark.parametrize("lm", [None, InventingLM(), AllInvented()], ids=["no-lm", "lm", "lm-all-invented"])
@pytest.mark.parametrize("cloud_up", [True, False], ids=["cloud-up", "cloud-down"])
@pytest.mark.parametrize("mode", [m.value for m in CollabMode])
def test_each_request_selects_its_facts_at_most_once(cells, monkeypatch, mode, cloud_up, lm, text):
    """Every output of a request (completed prompt, opener, system message, exact, LM or facts-only answer, fact
    check) renders one selection: the places are ranked (one encoder call) and the kinds picked at most once, in
    every mode and on every fallback; cloud-only selects nothing unless the edge has to answer."""
    rankings, selections = [], []

    def embed(texts):
        rankings.append(texts[0])
        return embed_texts(texts)

    def select_fact_kinds(*args, **kw):
        selections.append(args[0])
        return real_select(*args, **kw)

    real_select = completion.select_fact_kinds
    monkeypatch.setattr(completion, "select_fact_kinds", select_fact_kinds)
    cloud = ScriptedCloud("I'm sorry, I cannot help.") if cloud_up else None  # re-asked: a second cloud call
    engine = CollabEngine(cells, lm, cloud, route_threshold=0.5, embed=embed)
    resp = engine.handle(EdgePromptRequest(user="u", cell="c3", text=text, mode=CollabMode(mode)), now=FIXED_NOW)
    selected = 1 if resp.answered_by == "edge" or mode != "cloud-only" else 0
    assert rankings == [text] * selected and selections == [text] * selected, resp.flags
