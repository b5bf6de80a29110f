"""The two readers on the hand-written development sets, bad input, and single cases that pin each convention.

The held-out test sets (intent/data/eval_*_test.jsonl, eval_*_blind.jsonl) are scored by bench/intent.py only, so that
no test failure invites tuning the rules on them.
"""
import json
from pathlib import Path

import pytest

from netgpt.intent import IntentError, parse_intent, translate_to_flows

DATA = Path(__file__).resolve().parents[2] / "intent" / "data"


def rows(name):
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("row", rows("eval_flows_dev.jsonl"), ids=lambda r: r["id"])
def test_flow_dev_set(row):
    assert translate_to_flows(row["text"]) == row["flows"]


@pytest.mark.parametrize("row", rows("eval_intents_dev.jsonl"), ids=lambda r: r["id"])
def test_intent_dev_set(row):
    assert parse_intent(row["text"], lm=None).model_dump(mode="json") == row["intent"]


@pytest.mark.parametrize("row", rows("eval_bad_intents.jsonl"), ids=lambda r: r["id"])
def test_bad_intents_give_the_right_structured_error(row):
    with pytest.raises(IntentError) as err:
        parse_intent(row["text"], lm=None)
    assert err.value.kind == row["error"]
    assert err.value.problem.message


@pytest.mark.parametrize("row", rows("eval_bad_flows.jsonl"), ids=lambda r: r["id"])
def test_bad_flows_give_the_right_structured_error(row):
    with pytest.raises(IntentError) as err:
        translate_to_flows(row["text"])
    assert err.value.kind == row["error"]


def test_issue_example_high_level():
    got = parse_intent("cap video in cell 2 at 5 Mbit/s between 08:00 and 18:00").model_dump(mode="json")
    assert got == {"action": "rate_limit", "traffic_class": "video_streaming", "scope": ["c2"], "src": None,
                   "dst": None, "link": None, "rate_mbps": 5, "node": None, "window": {"start": "08:00", "end": "18:00"},
                   "duration_min": None, "subject": None, "threshold_pct": None, "horizon_min": None}


def test_issue_example_flow_level():
    assert translate_to_flows("In switch 1, forward TCP traffic on port 80 destined for 10.0.0.3 through port 2.") == [
        {"dpid": 1, "table_id": 0, "priority": 100,
         "match": {"eth_type": 2048, "ip_proto": 6, "tcp_dst": 80, "ipv4_dst": "10.0.0.3"},
         "actions": [{"type": "OUTPUT", "port": 2}]}]


@pytest.mark.parametrize("text, mbps", [("cap gaming in cell 1 at 1 Gbit/s", 1000), ("cap gaming in cell 1 at 500 kbps", 0.5),
                                        ("cap gaming in cell 1 at 2 MB/s", 16), ("cap gaming in cell 1 at 2 Mb/s", 2),
                                        ("cap gaming in cell 1 at 3000000 bit/s", 3)])
def test_rates_are_converted_to_mbit_per_s(text, mbps):
    assert parse_intent(text, lm=None).rate_mbps == mbps


def test_cell_words_and_12_hour_clock():
    got = parse_intent("limit navigation in cell twelve to 3 Mbps from 7pm to 11:30pm")
    assert got.scope == ["c12"] and got.window.start == "19:00" and got.window.end == "23:30"


def test_a_clarification_says_what_to_ask():
    with pytest.raises(IntentError) as err:
        parse_intent("Cap video in cell 2.", lm=None)
    problem = err.value.problem
    assert problem.kind == "ambiguous" and problem.field == "rate_mbps" and "rate" in problem.question


def test_confidence_drops_with_words_the_rules_did_not_read():
    from netgpt.intent import understand
    full = understand("Block traffic from u1 to u3.", lm=None)
    partial = understand("Block traffic from u1 to u3 using the purple widget.", lm=None)
    assert full.confidence == 1.0 and partial.confidence < 0.8 and "widget" in partial.unread


@pytest.mark.parametrize("text", ["How high is the compute load on mec3 right now?",
                                  "Will link s2-s4 go above 70% in the next 2 hours?",
                                  "Maintenance on s2-s3: avoid that link for 30 minutes."])
def test_words_that_only_frame_the_question_or_verb_leave_nothing_unread(text):
    from netgpt.intent import understand
    u = understand(text, lm=None)
    assert u.unread == [] and u.confidence == 1.0  # so the LM is not asked
