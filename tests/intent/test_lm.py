"""The LM intent reader: parse-and-repair of its slot line, grounding (no value the sentence does not contain), and how
parse_intent combines it with the rules. A stub server stands in for the LM where its answer must be controlled; the
real reader (the student, or the adapter), when built (netgpt intent train), is checked on sentences the rules cannot read."""
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from netgpt.core.settings import get_settings
from netgpt.intent import IntentError, understand
from netgpt.intent.lm import IntentLM, built, ungrounded
from netgpt.intent.text import checked
from netgpt.intent.training_data import from_slots, generate, to_slots


@dataclass
class _Completion:
    text: str
    logprobs: list


class StubServer:
    def __init__(self, text: str):
        self.text, self.prompts = text, []

    def complete(self, prompt, adapter=None, max_tokens=64, **kw):
        self.prompts.append(prompt)
        return _Completion(self.text, [-0.05] * 8)


def test_slot_lines_round_trip_every_generated_example():
    for _, slots in generate(300, seed=3):
        assert to_slots(from_slots(slots)) == slots


def test_unknown_keys_are_dropped_and_numbers_converted():
    assert from_slots("action=rate_limit rate=5 colour=blue scope=c1,c2 start=08:00") == {
        "action": "rate_limit", "rate_mbps": 5, "scope": ["c1", "c2"], "window": {"start": "08:00", "end": None}}


def test_the_lm_rescues_a_verb_the_rules_cannot_read():
    # (a verb misspelt by one edit, "blok", the rules now read themselves: netgpt.intent.typos)
    lm = IntentLM(StubServer(" action=block class=web_chat scope=u21\n"))
    u = understand("web browsing for u21 is to be blocked", lm=lm)
    assert u.by == "lm" and u.intent.action.value == "block" and u.intent.scope == ["u21"]
    assert 0.9 < u.confidence <= 1.0


@pytest.mark.parametrize("slots, text", [
    ("action=rate_limit class=gaming scope=c3 rate=50", "throtel gaming in cell 3 to 5 mbit/s"),  # invented rate
    ("action=block src=h9", "traffic from h2 must be blocked"),  # invented host
    ("action=rate_limit scope=c7 rate=5", "throtel traffic in cell 3 to 5 mbit/s"),  # invented cell
    ("action=block class=voice_video_call scope=network", "zxqv blorp the wibble, asap pls"),  # no cue at all
    ("action=rate_limit class=gaming rate=5", "throtel video to 5 mbit/s"),  # a class the sentence does not name
])
def test_an_ungrounded_lm_reading_is_refused(slots, text):
    with pytest.raises(IntentError) as err:
        understand(text, lm=IntentLM(StubServer(" " + slots)))
    assert err.value.kind == "not_understood"


def test_grounding_accepts_units_and_spoken_numbers():
    assert ungrounded({"rate_mbps": 1000, "scope": ["c5"]}, "cap video in cell five at 1 gbit/s") == []
    assert ungrounded({"link": ["s2", "s4"], "duration_min": 60}, "avoid switch 2 to switch 4 for 1 hour") == []


def test_a_query_subject_needs_a_word_of_the_sentence():
    # the student read "the weather is lovely today" as a question about intent status (bench/intent.py, 2026-12-07)
    assert ungrounded({"action": "query", "subject": "intent_status"}, "the weather is lovely today") == ["intent_status"]
    with pytest.raises(IntentError) as err:
        understand("the weather is lovely today", lm=IntentLM(StubServer(" action=query subject=intent_status")))
    assert err.value.kind == "not_understood"
    # every question of the development sets is still grounded as expected
    data = Path(__file__).resolve().parents[2] / "intent" / "data"
    rows = [json.loads(line) for name in ("eval_intents_dev.jsonl", "eval_intents_blind.jsonl")
            for line in (data / name).read_text().splitlines() if line.strip()]
    # and wordings of a throughput question that no development sentence uses
    for text in ("how full is the link s1-s2", "what is the current usage of link s1-s2",
                 "how much data is crossing s1-s2"):
        assert ungrounded({"action": "query", "subject": "link_throughput", "link": ["s1", "s2"]}, text) == [], text
    queries = [r for r in rows if r["intent"]["action"] == "query"]
    assert len(queries) >= 5
    for r in queries:
        fields = {k: v for k, v in r["intent"].items() if k in ("action", "subject")}
        assert ungrounded(fields, checked(r["text"])) == [], r["text"]


def test_an_lm_reading_that_does_not_validate_leaves_the_rules_answer():
    with pytest.raises(IntentError) as err:
        understand("the weather is lovely today", lm=IntentLM(StubServer(" action=query subject=weather")))
    assert err.value.kind == "not_understood"


def test_the_rules_errors_they_are_sure_of_never_reach_the_lm():
    stub = StubServer(" action=block src=u1 dst=u3")
    with pytest.raises(IntentError) as err:
        understand("Block and allow traffic from u1 to u3.", lm=IntentLM(stub))
    assert err.value.kind == "ambiguous" and stub.prompts == []


def test_a_sentence_the_rules_read_completely_does_not_ask_the_lm():
    stub = StubServer(" action=allow")
    assert understand("Block traffic from u1 to u3.", lm=IntentLM(stub)).by == "rules" and stub.prompts == []


def test_the_lm_fills_what_the_rules_left_unread_but_does_not_overrule_them():
    text = "Block traffic from u1 to u3 using the purple widget."  # 'purple widget': read by no rule
    filled = understand("limit gamngs in cell 4 to 10 mbps", lm=IntentLM(StubServer(  # 2 edits: no rule reads it
        " action=rate_limit class=gaming scope=c4 rate=10")))
    assert filled.by == "lm" and filled.intent.traffic_class.value == "gaming"
    kept = understand(text, lm=IntentLM(StubServer(" action=allow src=u1 dst=u3")))
    assert kept.by == "rules" and kept.intent.action.value == "block"


@pytest.mark.skipif(not built(get_settings()), reason="the LM intent reader is not built (netgpt intent train)")
def test_the_real_reader_reads_typos_the_rules_cannot():
    reader = IntentLM.open(get_settings())
    u = understand("limit gamngs in cell 4 to 10 Mbps", lm=reader)  # 2 edits from "gaming": no rule corrects it
    assert u.by == "lm" and u.intent.model_dump(exclude_none=True, mode="json") == {
        "action": "rate_limit", "traffic_class": "gaming", "scope": ["c4"], "rate_mbps": 10}


# --- guided decoding: what the slot grammar forces is written without asking the LM ----------------------------------


class CharTokenizer:
    """One token per character, the end-of-text token last."""

    def __init__(self, chars=" =_,.:0123456789abcdefghijklmnopqrstuvwxyz\n"):
        self.chars, self.eos_token_id = chars, len(chars)

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [self.chars.index(c) for c in text]}

    def decode(self, ids, skip_special_tokens=True):
        return "".join(self.chars[i] for i in ids if i != self.eos_token_id)


class TeacherServer:
    """An LM that writes `line` (given as token ids after the prompt), then the end-of-text token; counts its steps."""

    def __init__(self, tokenizer, line_ids: list[int]):
        self.tokenizer, self.line, self.steps, self.start = tokenizer, line_ids, 0, None

    def encode(self, prompt, max_tokens):
        ids = self.tokenizer(prompt)["input_ids"]
        self.start = len(ids)
        return ids

    def next_logits(self, ids, adapter=None):
        import numpy as np

        self.steps += 1
        written = list(ids[self.start:])
        assert written == self.line[:len(written)], "the decoder wrote what the LM would not have"
        logits = np.zeros(max(self.tokenizer.eos_token_id + 1, max(self.line, default=0) + 1), dtype=np.float32)
        logits[self.line[len(written)] if len(written) < len(self.line) else self.tokenizer.eos_token_id] = 10.0
        return logits


def test_forced_continuations_follow_the_slot_grammar():
    from netgpt.intent.lm import forced

    assert forced("") == " action="
    assert forced(" action=rate") == "_limit" and forced(" action=allo") == ""  # allow or allocate_compute
    assert forced(" action=rate_limit c") == "lass=" and forced(" action=block s") == ""  # scope, src, start, subject
    assert forced(" action=block sc") == "ope=" and forced(" action=block scope=c2 r") == "ate="
    assert forced(" action=query subject=link_u") == "tilization_forecast" and forced(" action=query subject=link_") == ""
    assert forced(" action=block scope=c2 rate=5") == "" and forced(" action=block ") == ""


def test_guided_decoding_writes_the_same_line_in_fewer_lm_steps():
    tok = CharTokenizer()
    line = " action=rate_limit class=gaming rate=5"
    server = TeacherServer(tok, tok(line)["input_ids"])
    text, lps = IntentLM(server, guided=True).decode("operator: cap gaming at 5\nintent:")
    assert text == line
    # the LM chose 8 of the 38 characters ("ra", " c", "g", " r", "5") and the end
    assert server.steps == len(lps) == 9


def test_guided_reading_goes_through_the_same_checks():
    tok = CharTokenizer()
    lm = IntentLM(TeacherServer(tok, tok(" action=block class=web_chat scope=u21")["input_ids"]), guided=True)
    assert understand("web browsing for u21 is to be blocked", lm=lm).intent.scope == ["u21"]
    invented = IntentLM(TeacherServer(tok, tok(" action=block src=h9")["input_ids"]), guided=True)
    with pytest.raises(IntentError):
        understand("traffic from h2 must be blocked", lm=invented)


def test_guided_decoding_stops_at_the_end_of_the_line():
    tok = CharTokenizer()
    server = TeacherServer(tok, tok(" action=block scope=c1\noperator: more")["input_ids"])
    text, _ = IntentLM(server, guided=True).decode("operator: block cell 1\nintent:")
    assert text.splitlines()[0] == " action=block scope=c1" and "more" not in text


@pytest.mark.skipif(not (get_settings().cache_dir / "models" / "cloud-default" / "tokenizer.json").is_file(),
                    reason="the base model's tokenizer is not in the cache (netgpt models prepare)")
def test_guided_decoding_forces_the_tokens_training_used():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(get_settings().cache_dir / "models" / "cloud-default")
    for line in (" action=rate_limit class=video_streaming scope=c2 rate=5 start=08:00 end=18:00",
                 " action=query link=s2,s4 subject=link_utilization_forecast horizon=30",
                 " action=allocate_compute scope=c1,c3 node=mec1"):
        ids = tok(line, add_special_tokens=False)["input_ids"]  # as training tokenized the target
        server = TeacherServer(tok, ids)
        text, _ = IntentLM(server, guided=True).decode("operator: x\nintent:")
        assert text == line and server.steps < len(ids) + 1
