"""GENERATED training data for the LM intent reader: operator sentences -> the compact slot line the LM writes.

Every sentence is built from templates and word lists below with `random.Random(seed)` (default seed 0), never from
the hand-written evaluation sets in intent/data/ (`generate` skips any sentence equal to an evaluation sentence after
normalisation, and `clashes` lets the training command check it). About a quarter of the
sentences get one typo in one word (a dropped, doubled or swapped letter), because operators type in a hurry.

The slot line, e.g. for "cap video in cell 2 at 5 Mbit/s between 08:00 and 18:00":

    action=rate_limit class=video_streaming scope=c2 rate=5 start=08:00 end=18:00

Keys: action class scope src dst link rate node start end dur subject pct horizon; lists are comma-joined ("c1,c2",
"s1,s2"). `to_slots` and `from_slots` convert between this line and HighLevelIntent fields.
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

SLOT_KEYS = {"action": "action", "class": "traffic_class", "scope": "scope", "src": "src", "dst": "dst",
             "link": "link", "rate": "rate_mbps", "node": "node", "start": None, "end": None, "dur": "duration_min",
             "subject": "subject", "pct": "threshold_pct", "horizon": "horizon_min"}

CLASS_WORDS = {
    "video_streaming": ["video", "video streaming", "streaming", "streaming video", "youtube and netflix"],
    "navigation": ["navigation", "maps", "navigation traffic", "map apps"],
    "ar_vr": ["ar/vr", "AR", "VR sessions", "augmented reality", "XR"],
    "gaming": ["gaming", "games", "cloud gaming", "online games", "gaming traffic"],
    "web_chat": ["web", "browsing", "web browsing", "chat", "web and chat"],
    "file_transfer": ["file transfers", "downloads", "bulk transfers", "ftp", "backups"],
    "voice_video_call": ["video calls", "voice calls", "voip", "calls", "video conferencing"],
}
VERBS = {
    "rate_limit": ["cap", "limit", "throttle", "rate-limit", "restrict", "slow down", "police"],
    "prioritize": ["prioritize", "prioritise", "give priority to", "expedite"],
    "block": ["block", "drop", "stop", "deny", "cut off", "ban"],
    "allow": ["allow", "permit", "unblock", "re-enable"],
    "reserve_bandwidth": ["reserve", "guarantee", "set aside", "dedicate"],
}
ENDPOINTS = ["h{}", "u{}", "cloud", "edge{}"]


def _cells(rng) -> list[str]:
    return [f"c{n}" for n in sorted(rng.sample(range(1, 13), rng.choice([1, 1, 1, 2, 3])))]


def _say_cells(rng, cells: list[str]) -> str:
    nums = [c[1:] for c in cells]
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
    if len(nums) == 1:
        n = nums[0]
        return f"cell {words[int(n) - 1] if rng.random() < 0.15 else n}"
    return "cells " + ", ".join(nums[:-1]) + f" and {nums[-1]}"


def _endpoint(rng) -> tuple[str, str]:
    kind = rng.choice(ENDPOINTS)
    if kind == "cloud":
        return "cloud", "the cloud"
    name = kind.format(rng.randint(1, 30))
    spoken = {"h": f"host {name[1:]}", "u": f"user {name[1:]}"}.get(name[0]) if rng.random() < 0.2 else None
    return name, spoken or name


def _rate(rng) -> tuple[float, str]:
    unit, scale = rng.choice([("Mbit/s", 1), ("Mbps", 1), ("Mb/s", 1), ("Gbit/s", 1000), ("Gbps", 1000),
                              ("kbit/s", 0.001), ("kbps", 0.001), ("megabits per second", 1)])
    n = rng.choice([1, 2, 3, 4, 5, 8, 10, 12, 15, 20, 25, 40, 50, 100, 200, 250, 500]) if scale != 1000 else \
        rng.choice([1, 2, 5, 10])
    if scale == 0.001:
        n = rng.choice([100, 250, 500, 800])
    value = n * scale
    return (int(value) if float(value).is_integer() else round(value, 3)), f"{n} {unit}"


def _clock(rng) -> tuple[str, str]:
    h, m = rng.randint(0, 23), rng.choice([0, 0, 0, 30, 15, 45])
    if rng.random() < 0.25 and m == 0 and 1 <= h <= 23:
        hh = h % 12 or 12
        return f"{h:02d}:00", f"{hh}{'pm' if h >= 12 else 'am'}"
    return f"{h:02d}:{m:02d}", f"{h:02d}:{m:02d}" if rng.random() < 0.7 else f"{h}:{m:02d}"


def _timing(rng, fields: dict) -> str:
    r = rng.random()
    if r < 0.15:
        (a, sa), (b, sb) = _clock(rng), _clock(rng)
        fields["window"] = {"start": a, "end": b}
        return rng.choice([f" between {sa} and {sb}", f" from {sa} to {sb}"])
    if r < 0.22:
        a, sa = _clock(rng)
        fields["window"] = {"start": a, "end": None}
        return f" after {sa}"
    if r < 0.29:
        b, sb = _clock(rng)
        fields["window"] = {"start": None, "end": b}
        return rng.choice([f" until {sb}", f" till {sb}"])
    if r < 0.42:
        n, unit = rng.choice([(10, "minutes"), (15, "minutes"), (30, "minutes"), (45, "minutes"), (90, "minutes"),
                              (1, "hour"), (2, "hours"), (3, "hours"), (6, "hours")])
        fields["duration_min"] = n * (60 if unit.startswith("hour") else 1)
        return f" for {'an' if n == 1 else n} {unit}" if rng.random() < 0.7 else f" for the next {n} {unit}"
    return ""


def _traffic_phrase(rng, fields: dict, action: str) -> str:
    """The selector: a class and/or where the traffic is (cells, the network, endpoints)."""
    parts = []
    if rng.random() < 0.75:
        cls = rng.choice(list(CLASS_WORDS))
        fields["traffic_class"] = cls
        parts.append(rng.choice(CLASS_WORDS[cls]))
    else:
        parts.append(rng.choice(["traffic", "all traffic", "everything"]))
    r = rng.random()
    if r < 0.45:
        cells = _cells(rng)
        fields["scope"] = cells
        parts.append(rng.choice(["in", "from", "for", "in"]) + " " + _say_cells(rng, cells))
    elif r < 0.6 and action != "allow":
        fields["scope"] = "network"
        parts.append(rng.choice(["network-wide", "across the network", "everywhere", "across the whole network"]))
    elif r < 0.85:
        a, sa = _endpoint(rng)
        fields["src"] = a
        parts.append(f"from {sa}")
        if rng.random() < 0.5:
            b, sb = _endpoint(rng)
            if b != a:
                fields["dst"] = b
                parts.append(f"to {sb}")
    else:
        b, sb = _endpoint(rng)
        fields["dst"] = b
        parts.append(f"to {sb}")
    return " ".join(parts)


def _sentence(rng) -> tuple[str, dict]:
    action = rng.choice(["rate_limit", "rate_limit", "prioritize", "block", "allow", "reserve_bandwidth",
                         "avoid_link", "allocate_compute", "query", "query"])
    f: dict = {"action": action}
    if action in VERBS:
        verb = rng.choice(VERBS[action])
        what = _traffic_phrase(rng, f, action)
        if action in ("rate_limit", "reserve_bandwidth"):
            f["rate_mbps"], spoken = _rate(rng)
            if action == "rate_limit":
                text = rng.choice([f"{verb} {what} at {spoken}", f"{verb} {what} to {spoken}"])
            else:
                text = rng.choice([f"{verb} {spoken} for {what}", f"{verb} {spoken} of bandwidth for {what}"])
        elif action == "prioritize" and verb == "give priority to" and rng.random() < 0.5:
            text = f"give {what} priority"
        else:
            text = f"{verb} {what}"
        text += _timing(rng, f)
    elif action == "avoid_link":
        a, b = sorted(rng.sample(range(1, 9), 2))
        f["link"] = [f"s{a}", f"s{b}"]
        link = rng.choice([f"s{a}-s{b}", f"the link between s{a} and s{b}", f"the s{a}-s{b} link",
                           f"the link between switch {a} and switch {b}"])
        text = rng.choice([f"avoid {link}", f"keep traffic off {link}", f"route around {link}",
                           f"take {link} out of service", f"drain {link}"]) + _timing(rng, f)
    elif action == "allocate_compute":
        cells = _cells(rng)
        node = rng.choice(["mec", "edge"]) + str(rng.randint(1, 6))
        f["scope"], f["node"] = cells, node
        c = _say_cells(rng, cells)
        text = rng.choice([f"serve {c} from {node}", f"move {c} to {node}", f"assign {c} to {node}",
                           f"allocate compute for {c} on {node}", f"pin {c} to {node}"]) + _timing(rng, f)
    else:
        text = _query(rng, f)
    return _typo(rng, text) if rng.random() < 0.25 else text, f


def _query(rng, f: dict) -> str:
    subject = rng.choice(["link_utilization_forecast", "link_throughput", "compute_load", "flows", "intent_status"])
    f["subject"] = subject
    if subject == "link_utilization_forecast":
        pct, (h, spoken) = rng.choice([60, 70, 75, 80, 85, 90, 95]), rng.choice(
            [(60, "the next hour"), (30, "the next 30 minutes"), (15, "the next 15 minutes"), (120, "2 hours")])
        f["threshold_pct"], f["horizon_min"] = pct, h
        return rng.choice([f"which links will be above {pct}% in {spoken}?",
                           f"will any link exceed {pct} percent within {spoken}?",
                           f"which links are expected to go over {pct}% over {spoken}?"])
    if subject == "link_throughput":
        a, b = sorted(rng.sample(range(1, 9), 2))
        f["link"] = [f"s{a}", f"s{b}"]
        return rng.choice([f"what is the throughput on s{a}-s{b}?", f"how much traffic is on the s{a}-s{b} link?",
                           f"show the throughput between s{a} and s{b}"])
    if subject == "compute_load":
        node = rng.choice(["mec", "edge"]) + str(rng.randint(1, 6))
        f["node"] = node
        return rng.choice([f"how many llm sessions is {node} serving?", f"how loaded is {node}?",
                           f"is {node} busy?", f"what is the load on {node}?"])
    if subject == "flows":
        n = rng.randint(1, 12)
        f["node"] = f"s{n}"
        return rng.choice([f"show the flows on switch {n}", f"list flows on s{n}", f"what flows does s{n} have?"])
    return rng.choice(["what is the status of my intents?", "show my intents", "list the intents",
                       "which intents are active?"])


def _typo(rng, text: str) -> str:
    words = text.split()
    idx = [i for i, w in enumerate(words) if w.isalpha() and len(w) >= 4]
    if not idx:
        return text
    i = rng.choice(idx)
    w, j = words[i], rng.randrange(1, len(words[i]) - 1)
    op = rng.choice(["drop", "double", "swap"])
    words[i] = w[:j] + w[j + 1:] if op == "drop" else w[:j] + w[j] + w[j:] if op == "double" else \
        w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(words)


def to_slots(fields: dict) -> str:
    out = []
    for key, name in SLOT_KEYS.items():
        if key in ("start", "end"):
            value = (fields.get("window") or {}).get(key)
        else:
            value = fields.get(name)
        if value is None:
            continue
        out.append(f"{key}={','.join(value) if isinstance(value, list) else value}")
    return " ".join(out)


def from_slots(line: str) -> dict:
    """The slot line back to HighLevelIntent fields; unknown keys are dropped (the repair step), values are strings
    converted where the field is numeric or a list."""
    fields: dict = {}
    for key, value in re.findall(r"(\w+)=(\S+)", line):
        name = SLOT_KEYS.get(key, "?")
        if name == "?":
            continue
        if key in ("start", "end"):
            fields.setdefault("window", {"start": None, "end": None})[key] = value
        elif name in ("rate_mbps", "duration_min", "threshold_pct", "horizon_min"):
            try:
                number = float(value)
            except ValueError:
                continue
            fields[name] = int(number) if number.is_integer() else number
        elif name == "link" or name == "scope" and value != "network":
            fields[name] = value.split(",")
        else:
            fields[name] = value
    return fields


def generate(n: int, seed: int = 0, exclude: set[str] = frozenset()) -> list[tuple[str, str]]:
    """n distinct (sentence, slot line) pairs, none equal (normalised) to a sentence in `exclude`."""
    rng, seen, out = random.Random(seed), {_norm(t) for t in exclude}, []
    while len(out) < n:
        text, fields = _sentence(rng)
        text = text[0].upper() + text[1:] if rng.random() < 0.5 else text
        if _norm(text) in seen:
            continue
        seen.add(_norm(text))
        out.append((text, to_slots(fields)))
    return out


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def eval_sentences(data_dir: Path) -> set[str]:
    """Every sentence of the hand-written evaluation sets: what training data must never contain."""
    return {json.loads(line)["text"] for path in sorted(Path(data_dir).glob("eval_*.jsonl"))
            for line in path.read_text().splitlines() if line.strip()}


def clashes(pairs: list[tuple[str, str]], data_dir: Path) -> list[str]:
    """Evaluation sentences that also occur among the generated ones (after normalisation); must be empty."""
    generated = {_norm(t) for t, _ in pairs}
    return sorted(t for t in eval_sentences(data_dir) if _norm(t) in generated)
