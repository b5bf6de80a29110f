"""The collaboration engine alone, with a scripted cloud and scripted edge LMs: the cloud answers in its own words
(no forced opener, no re-asking), the prefill mode (off by default) keeps its opener apart from the cloud's text (the
real cloud service's continuation is tested in tests/models/test_cloud_service.py), the edge's own answers, and one
fact selection per request."""
from __future__ import annotations

import pytest

from netgpt.core.messages import CollabMode, EdgePromptRequest
from netgpt.edge_agent.collab import completion
from netgpt.edge_agent.collab.completion import LMText
from netgpt.edge_agent.collab.engine import PREFILLED, CloudAnswer, CollabEngine, cloud_generated_text
from netgpt.edge_agent.user_intent.classifier import embed_texts
from tests.edge_agent.conftest import FIXED_NOW


class ScriptedCloud:
    """Answers `first` to a fresh question and continues a begun answer with `then`; records every call."""

    def __init__(self, first: str, then: str = " is a fine choice."):
        self.first, self.then, self.calls, self.prompts = first, then, [], []

    def ask(self, prompt, system=None, prefill=None):
        self.calls.append(prefill)
        self.prompts.append(prompt)
        text = prefill + self.then if prefill else self.first
        return CloudAnswer(text, 50, 10, 5.0)


def handle(cells, cloud, mode="netgpt", text="where can I try takoyaki tonight", **options):
    engine = CollabEngine(cells, None, cloud, **options)
    return engine.handle(EdgePromptRequest(user="u", cell="c3", text=text, mode=CollabMode(mode)), now=FIXED_NOW)


@pytest.mark.parametrize("mode", ["netgpt", "routed"])
def test_the_cloud_answers_in_its_own_words_once(cells, mode):
    """An answer that leaves the place out is the cloud's answer: it is not asked again, nothing is begun for it, and
    the prompt does not tell it how to begin."""
    cloud = ScriptedCloud("I'm sorry, as a Japanese-English assistant I cannot help.")
    resp = handle(cells, cloud, mode=mode)
    assert cloud.calls == [None] and resp.answer == "I'm sorry, as a Japanese-English assistant I cannot help."
    assert (resp.cloud_tokens_in, resp.cloud_tokens_out) == (50, 10) and PREFILLED not in resp.flags
    assert "Start with" not in cloud.prompts[0] and "Osaka" in cloud.prompts[0]
    assert resp.answer_edge_prefix == "" and cloud_generated_text(resp) == resp.answer


def test_the_prefill_mode_is_off_by_default_and_its_opener_is_edge_text(cells):
    cloud = ScriptedCloud("never used")
    resp = handle(cells, cloud, prefill_opener=True)
    opener = "In Osaka, Japan, at 23:05 on Thursday, Dotonbori"
    assert cloud.calls == [opener] and resp.answer == f"{opener} is a fine choice." and PREFILLED in resp.flags
    assert resp.answer_edge_prefix == opener and cloud_generated_text(resp) == "is a fine choice."
    # By default it is off; without a cloud that continues answers it cannot be turned on.
    for off in ({}, {"prefill_opener": True, "cloud_prefill": False}):
        plain = ScriptedCloud("In Osaka, try Dotonbori.")
        resp = handle(cells, plain, **off)
        assert plain.calls == [None] and resp.answer_edge_prefix == "" and PREFILLED not in resp.flags


def test_an_answer_the_edge_wrote_has_no_cloud_text(cells):
    resp = handle(cells, ScriptedCloud("x"), mode="edge-only", text="what time is it here?")
    assert resp.answered_by == "edge" and "23:05" in resp.answer and cloud_generated_text(resp) == ""
    down = handle(cells, None, mode="netgpt")  # no cloud: the edge's facts-only answer
    assert down.answered_by == "edge" and cloud_generated_text(down) == ""
    assert handle(cells, ScriptedCloud("x"), mode="cloud-only").flags == []  # the raw prompt


class InventingLM:
    """An edge LM that answers with a place and a time the cell's context contradicts."""

    name, adapter, answers = "inventing", None, True

    def generate(self, prompt, max_tokens=48, stop_at_sentence=False):
        return LMText("Try the harbour. Paris is nice at 09:00.", 20, 10, -0.01)

    def answer(self, question, max_tokens=48):  # the edge's own answer (EdgeLM.answer: the base, no adapter)
        return self.generate(f"Q: {question}\nA:", max_tokens)


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


def test_an_lm_that_only_completes_is_never_asked_for_an_answer(cells):
    """A task student (EdgeLM.answers False) writes completions only: where the edge must answer, it gives what the
    node knows, as with no LM, and the student is not asked."""
    class Completer(InventingLM):
        answers = False

        def answer(self, question, max_tokens=48):
            raise AssertionError("a student was asked for an answer")

    req = EdgePromptRequest(user="u", cell="c3", text="where can I try takoyaki", mode=CollabMode.edge_only)
    resp = CollabEngine(cells, Completer(), None).handle(req, now=FIXED_NOW)
    assert resp.answered_by == "edge" and "edge_facts_only" in resp.flags
    assert resp.answer.startswith("This edge node has no language model to answer this. What this node knows:")


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


def test_routed_computes_no_lm_answer_that_cannot_reach_its_threshold(cells):
    class Counting(InventingLM):
        calls = 0

        def answer(self, question, max_tokens=48):
            Counting.calls += 1
            return LMText("Try the harbour.", 20, 10, -0.01)  # confidence 0.99: never 1.0

    req = EdgePromptRequest(user="u", cell="c3", text="write me a haiku", mode=CollabMode.routed)
    at_one = CollabEngine(cells, Counting(), ScriptedCloud("A haiku."), route_threshold=1.0).handle(req, now=FIXED_NOW)
    assert at_one.answered_by == "cloud" and Counting.calls == 0 and at_one.edge_confidence is None
    lookup = CollabEngine(cells, Counting(), ScriptedCloud("x"), route_threshold=1.0).handle(
        req.model_copy(update={"text": "what time is it here?"}), now=FIXED_NOW)
    assert lookup.answered_by == "edge" and "23:05" in lookup.answer and Counting.calls == 0  # exact, no LM
    below = CollabEngine(cells, Counting(), ScriptedCloud("x"), route_threshold=0.9).handle(req, now=FIXED_NOW)
    assert below.answered_by == "edge" and below.answer == "Try the harbour." and Counting.calls == 1


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
    cloud = ScriptedCloud("I'm sorry, I cannot help.") if cloud_up else None
    engine = CollabEngine(cells, lm, cloud, route_threshold=0.5, embed=embed)
    resp = engine.handle(EdgePromptRequest(user="u", cell="c3", text=text, mode=CollabMode(mode)), now=FIXED_NOW)
    selected = 1 if resp.answered_by == "edge" or mode != "cloud-only" else 0
    assert rankings == [text] * selected and selections == [text] * selected, resp.flags
