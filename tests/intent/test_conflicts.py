"""Flow-conflict classification on the hand-built pairs of intent/data/conflict_pairs.jsonl (every type, and disjoint
pairs), written from the definitions in intent/conflicts.py; two pairs like s1 and s3 were tried while the code was
written, the rest were first run as this test."""
import json
from collections import Counter
from pathlib import Path

import pytest

from netgpt.intent import classify_conflict
from netgpt.intent.conflicts import TYPES, match_relation

PAIRS = [json.loads(line) for line in (Path(__file__).resolve().parents[2] / "intent" / "data" /
                                       "conflict_pairs.jsonl").read_text().splitlines() if line.strip()]


def test_the_set_has_every_type_and_disjoint_pairs():
    kinds = Counter(p["expected"] for p in PAIRS)
    assert all(kinds[t] >= 4 for t in TYPES) and kinds[None] >= 5


@pytest.mark.parametrize("pair", PAIRS, ids=[p["id"] for p in PAIRS])
def test_each_pair_gets_its_type(pair):
    assert classify_conflict(pair["installed"], pair["new"]) == pair["expected"], pair["why"]


def test_prerequisites_and_masks():
    assert match_relation({"tcp_dst": 80}, {"eth_type": 2048, "ip_proto": 6}) == "a_in_b"
    assert match_relation({"ipv4_dst": "10.0.0.0/8"}, {"ipv4_dst": "10.0.0.0/255.0.0.0"}) == "equal"
    assert match_relation({"ipv6_dst": "2001:db8::1"}, {"eth_type": 2048}) == "disjoint"  # IPv6 is not IPv4
    assert match_relation({"eth_src": "00:00:00:00:00:01"}, {"eth_src": "00:00:00:00:00:00/ff:ff:ff:ff:ff:00"}) == "a_in_b"
    assert match_relation({"in_port": "LOCAL"}, {"in_port": 1}) == "disjoint"
