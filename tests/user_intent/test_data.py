"""The generated training set must not contain the hand-written held-out prompts, nor near-copies of them."""
import json
import re
from collections import Counter
from pathlib import Path

from netgpt.edge_agent.user_intent.training_data import TEMPLATES, generate_training_set
from netgpt.core.messages import ServiceClass

HELDOUT = Path(__file__).resolve().parents[2] / "edge_agent" / "data" / "user_intent_heldout.jsonl"
# Word-set overlap at or above this counts as a near-duplicate. The closest pair today is about 0.5.
MAX_JACCARD = 0.6


def _normalise(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _heldout() -> list[dict]:
    return [json.loads(line) for line in HELDOUT.read_text().splitlines() if line.strip()]


def test_heldout_set_is_large_and_balanced():
    rows = _heldout()
    counts = Counter(r["label"] for r in rows)
    assert len(rows) >= 140
    assert set(counts) == {c.value for c in ServiceClass}
    assert min(counts.values()) >= 20
    assert len({_normalise(r["text"]) for r in rows}) == len(rows), "held-out prompts must be distinct"


def test_generator_is_deterministic_and_covers_every_class():
    first, second = generate_training_set(), generate_training_set()
    assert first == second
    assert set(TEMPLATES) == set(ServiceClass)
    assert set(Counter(s.label for s in first).values()) == {240}


def test_no_heldout_prompt_or_near_duplicate_in_training_set():
    training = generate_training_set()
    training_normalised = {_normalise(s.text) for s in training}
    training_words = [set(t.split()) for t in training_normalised]
    for row in _heldout():
        text = _normalise(row["text"])
        assert text not in training_normalised, f"held-out prompt in training data: {row['text']!r}"
        words = set(text.split())
        closest = max(len(words & w) / len(words | w) for w in training_words)
        assert closest < MAX_JACCARD, f"near-duplicate of held-out prompt {row['text']!r} (word overlap {closest:.2f})"
