"""The collaboration engine's repair of answers that ignore the user's place, with a scripted cloud (unit test of the
engine alone; the real cloud service's continuation is tested in tests/models/test_cloud_service.py)."""
from __future__ import annotations

from edge_agent.collab import REASKED, CloudAnswer, CollabEngine
from netgpt.messages import CollabMode, EdgePromptRequest
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
        from edge_agent.collab_completion import LMText

        return LMText("Try the harbour. Paris is nice at 09:00.", 20, 10, -0.01)


def test_the_edge_lms_invented_facts_are_removed_from_its_answer(cells):
    engine = CollabEngine(cells, InventingLM(), ScriptedCloud("In Osaka, yes."), route_threshold=0.5)
    req = EdgePromptRequest(user="u", cell="c3", text="write me a haiku", mode=CollabMode.edge_only)
    resp = engine.handle(req, now=FIXED_NOW)
    assert resp.answer == "Try the harbour." and "edge_answer_fact_removed" in resp.flags
    # In routed mode an answer that needed repair is not trusted: the cloud answers.
    routed = engine.handle(req.model_copy(update={"mode": CollabMode.routed}), now=FIXED_NOW)
    assert routed.answered_by == "cloud" and routed.edge_confidence == 0.0


def test_an_edge_answer_with_nothing_reliable_left_says_what_the_node_knows(cells):
    class AllInvented(InventingLM):
        def generate(self, prompt, max_tokens=48, stop_at_sentence=False):
            from edge_agent.collab_completion import LMText

            return LMText("Paris is nice at 09:00.", 20, 8, -0.01)

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
