"""The intent service on the real redis-server: which conflicts refuse an intent and which are only recorded, refused
attempts kept on record, and questions never read as flow-level intents."""
import pytest

from netgpt.intent import IntentError
from netgpt.intent.service import level_of, submit
from netgpt.intent.store import IntentStore
from tests.intent.test_queries import network, settings  # noqa: F401  (fixtures)


def test_a_cap_inside_a_block_is_accepted_with_the_overlap_recorded(network, settings):  # noqa: F811
    block = submit(network, "block traffic from u1 to u3", lm=None)
    cap = submit(network, "cap video in cell 1 at 5 Mbit/s", lm=None)  # overlaps the block at a lower priority
    assert {c["with"] for c in cap.measured["conflicts"]} == {block.intent_id}
    assert {c["type"] for c in cap.measured["conflicts"]} == {"correlation"}
    assert cap.state.value == "compiled"


def test_the_same_intent_twice_is_refused_and_the_attempt_kept(network, settings):  # noqa: F811
    first = submit(network, "block traffic from u1 to u3", lm=None)
    with pytest.raises(IntentError) as err:
        submit(network, "Block traffic from u1 to u3.", lm=None)
    problem = err.value.problem
    assert problem.kind == "conflict" and problem.options == [f"{first.intent_id}:redundancy"]
    kept = IntentStore(network).get(problem.intent_id)
    assert kept.state.value == "failed" and kept.history[-1].detail == problem.message


@pytest.mark.parametrize("text, level", [("Show flows on switch 2.", "high"), ("What flows does switch 2 have?", "high"),
                                         ("On switch 2, drop ARP.", "flow"), ("block traffic from u1 to u3", "high")])
def test_questions_are_never_flow_level(text, level):
    assert level_of(text) == level
