"""The deterministic reader of high-level operator sentences: text -> HighLevelIntent fields, and how much it understood.

It reads the pieces an intent is made of, each by a small pattern, and marks the words each piece used: rates with
units, time windows, durations and horizons, percentages, links, cells and the network scope, traffic classes, named
entities (hosts, users, MEC nodes, the cloud), and the verb. What is left unmarked (beyond filler words) lowers the
confidence: a sentence the rules read completely has confidence 1, one with unread words less, and the caller
(netgpt.intent.parse) asks the LM reader when it is low. Anything the rules cannot decide, they say (IntentError with a
question), never guess.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from netgpt.intent.errors import IntentError, ambiguous
from netgpt.intent.text import NUMBER_WORDS, TIME, as_int, clock
from netgpt.intent.typos import corrected

_NUMBER_WORD = re.compile(r"\b(" + "|".join(k for k in NUMBER_WORDS if len(k) > 2) + r")\b")

# Traffic classes: the first phrase found wins within one span; calls before video, so "video calls" is a call.
CLASSES = [
    ("voice_video_call", r"(?:voice|video) (?:and (?:voice|video) )?calls?|voip|video ?conferenc\w*|conference calls?|"
                         r"calls?"),
    ("ar_vr", r"ar ?/ ?vr|ar|vr|xr|augmented reality|virtual reality|mixed reality"),
    ("video_streaming", r"(?:streaming )?video(?: streaming)?|streaming|youtube|netflix"),
    ("navigation", r"navigation|maps?"),
    ("gaming", r"(?:cloud |online )?gam(?:ing|es?)"),
    ("web_chat", r"web(?: browsing)?(?: and chat)?|browsing(?: and chat)?|chat"),
    ("file_transfer", r"file[- ]transfers?|downloads?|ftp|bulk(?: transfers?| data)?|backups?"),
]

# "stop using the link s2-s5", "don't use s3-s4": avoid_link; "stop using video" stays a block
_USE_LINK = r" (?:using|use|routing(?: traffic)?(?: over| through| via)?) (?=(?:the |this |that )?(?:links?\b|s\d))"
ACTIONS = [  # (action, cue); "unblock" is not "block" thanks to the word boundary
    ("allow", r"\b(?:allow|allows|permit|permits|unblock|re-?enable|let)\b"),
    ("block", r"\b(?:block|blocks|drop|stop(?!" + _USE_LINK + r")|deny|forbid|ban|prevent|disallow|cut off|"
              r"shut off)\b"),
    ("rate_limit", r"\b(?:cap|caps|limit|limits|throttle|rate[- ]limit|slow down|restrict|police)\b"),
    ("prioritize", r"\b(?:prioriti[sz]e|priority|precedence|expedite)\b"),
    ("avoid_link", r"\b(?:avoid|keep (?:all )?traffic off|route around|bypass|drain|out of service|"
                   r"(?:don't|do not) route|steer (?:traffic )?away from|take (?:down|offline)|offline|"
                   r"(?:stop|(?:don't|do not|no longer|never))" + _USE_LINK + r")\b"),
    ("reserve_bandwidth", r"\b(?:reserve|guarantee|set aside|dedicate)\b"),
    ("allocate_compute", r"\b(?:serve|serves|allocate|assign|move|pin|put|spin up|provision)\b"),
]
_QUESTION = re.compile(r"^(?:which|what's|what|how|is|are|will|does|do|show|list|display|tell me|give me|report|"
                       r"forecast|predict)\b")
SUBJECTS = [
    ("intent_status", r"\bintents?\b"),
    ("flows", r"\bflows?\b|\bflow table\b"),
    ("compute_load", r"\bsessions?\b|\bloaded\b|\boverloaded\b|\bbusy\b|\bload (?:on|of)\b|\bcompute load\b|\bcpu\b"),
    ("link_utilization_forecast", r"\b(?:will|forecast|predict|predicted|expected|going to)\b"),
    ("link_throughput", r"\bthroughput\b|\bhow much traffic\b|\btraffic (?:is )?(?:crossing|on|over)\b"),
]

FILLER = set("""a an the is are be to of in on at for from by with and or all any my our your me us it its this that
these those please now right currently current traffic packets flows kindly can could would should will i we you
there here which what how many much do does let's lets just some every each whole entire again also then so than more
over under within next hour hours minute minutes min mins up down off out into onto via through across between during
users user sessions session handling handle serving have has had installed state status sure way another send give make get gets llm
""".split())

# The words the patterns above know (netgpt.intent.typos reads a misspelt one as the word: "limt", "blok").
RULE_WORDS = frozenset("""allow allows permit permits unblock enable block blocks drop stop deny forbid prevent
disallow limit limits caps throttle restrict police prioritize prioritise priority precedence expedite avoid bypass
drain reserve guarantee dedicate serve serves allocate assign move video streaming stream youtube netflix navigation
maps gaming games game online browsing chat file transfer transfers downloads download bulk backup backups voice calls
call voip conference conferencing augmented virtual reality mixed cell cells network everywhere whole entire link links
switch switches host user between until after before during minutes hours forecast predict predicted expected
throughput utilization utilisation utilized utilised sessions session intents intent flows flow loaded overloaded
above exceed exceeds percent bandwidth capacity speed rate compute resources traffic packets which what show list
display report""".split())


@dataclass
class Reading:
    """What the rules read in a sentence, with the share of its content words they used."""

    fields: dict
    confidence: float
    unread: list[str] = field(default_factory=list)
    corrected: list[str] = field(default_factory=list)  # misspelt keywords read as the keyword ("limt->limit")


class _Sentence:
    """The normalised text and which characters a piece has already used."""

    def __init__(self, text: str):
        t, self.corrected = corrected(text, RULE_WORDS)
        t = _NUMBER_WORD.sub(lambda m: str(NUMBER_WORDS[m.group(1)]), t)
        t = re.sub(r"\bhalf an hour\b", "30 minutes", t)
        t = re.sub(r"\b(?:an|a) hour\b", "1 hour", t)
        t = re.sub(r"\b(?:the )?next hour\b", "next 1 hour", t)
        t = re.sub(r"\b(?:12 )?(?:noon|midday)\b", "12:00", t)  # "between 10am and noon"
        t = re.sub(r"\b(?:12 )?midnight\b", "00:00", t)
        t = re.sub(r"\bswitch(?:es)? (\d+)\b", r"s\1", t)
        t = re.sub(r"\bhost (\d+)\b", r"h\1", t)
        t = re.sub(r"\buser (\d+)\b", r"u\1", t)
        t = re.sub(r"\bmec(?: node)?[ -]?(\d+)\b", r"mec\1", t)
        t = re.sub(r"\bedge(?: node)?[ -]?(\d+)\b", r"edge\1", t)
        self.text = t
        self.used = bytearray(len(t))

    def take(self, pattern: str, keep=lambda m: True) -> list[re.Match]:
        """Every match of pattern over characters no piece has used yet, for which keep(match); marks them used."""
        found = []
        for m in re.finditer(pattern, self.text):
            if any(self.used[m.start():m.end()]) or not keep(m):
                continue
            self.used[m.start():m.end()] = b"\x01" * (m.end() - m.start())
            found.append(m)
        return found

    def unread(self) -> list[str]:
        left = "".join(c if not u else " " for c, u in zip(self.text, self.used))
        return [w for w in re.findall(r"[a-z0-9']+", left) if w not in FILLER and not w.isdigit()]

    def content_words(self) -> int:
        return max(1, len([w for w in re.findall(r"[a-z0-9']+", self.text) if w not in FILLER]))


def read(t: str, raw: str = "") -> Reading:
    """Fields of HighLevelIntent (as plain values) read from normalised text `t` (netgpt.intent.text.checked);
    `raw` is the sentence as written, for the one thing case tells: "MB/s" is megabytes, "Mb/s" megabits."""
    s = _Sentence(t)
    out: dict = {}
    _rate(s, out, raw)
    _window(s, out)
    _durations(s, out)
    pct = s.take(r"(\d+(?:\.\d+)?)\s*(?:%|percent\b|per cent\b)")
    if pct:
        out["threshold_pct"] = as_int(float(pct[0].group(1)))
    _link(s, out)
    _scope(s, out)
    _traffic_class(s, out)
    entities = _entities(s)
    action = _action(s, out, entities)
    out["action"] = action
    _place_entities(action, entities, out)
    if action == "query":
        if out.get("horizon_min") is None and out.get("duration_min") is not None:
            out["horizon_min"] = out.pop("duration_min")
    elif "horizon_min" in out:
        out["duration_min"] = out.get("duration_min") or out.pop("horizon_min")
        out.pop("horizon_min", None)
    check_required(out, every_node=out.get("subject") == "compute_load" and bool(s.take(_EVERY_NODE)))
    unread = s.unread()
    # a corrected word was read, but less surely than one spelt right: it counts as half a word unread
    doubt = len(unread) + len(s.corrected) / 2
    return Reading(fields=out, confidence=round(max(0.0, 1 - doubt / s.content_words()), 3), unread=unread,
                   corrected=s.corrected)


def _rate(s: _Sentence, out: dict, raw: str) -> None:
    unit = (r"(k|m|g|t|kilo|mega|giga|tera)?\s*(bit/s|bits?/s|bits? per second|bps|b/s|bytes?/s|bytes? per second|"
            r"byte/s|bits?|bytes|b)\b")
    found = s.take(rf"(-\s*)?(\d+(?:\.\d+)?)\s*{unit}")
    if not found:
        return
    if len({m.group(0) for m in found}) > 1:
        raise ambiguous("the sentence gives more than one rate", "Which rate applies?", field="rate_mbps",
                        options=[m.group(0) for m in found])
    m = found[0]
    value = float(m.group(2)) * {"k": 1e-3, None: 1e-6, "m": 1.0, "g": 1e3, "t": 1e6}[(m.group(3) or " ")[0].strip()
                                                                                      or None]
    in_bytes = {float(x) for x in re.findall(r"(\d+(?:\.\d+)?)\s*[kKMGT]?B(?:/s|ps)\b", raw)}
    if "byte" in m.group(4) or float(m.group(2)) in in_bytes:
        value *= 8
    if m.group(1) or value <= 0:
        raise IntentError("invalid", f"a rate must be positive, not {m.group(0).replace(' ', '')}",
                          field="rate_mbps")
    out["rate_mbps"] = as_int(round(value, 6))


def _window(s: _Sentence, out: dict) -> None:
    def t(m, i):  # the i-th TIME in a match (3 groups each)
        return m.group(i), m.group(i + 1), m.group(i + 2)

    def pair(m):
        a, b = t(m, 1), t(m, 4)
        if a[1] is None and a[2] is None and b[2] is not None:
            a = (a[0], None, b[2])  # "from 7 to 11pm"
        return a, b

    both = s.take(rf"\b(?:between|from|during)\s+{TIME}\s*(?:and|to|until|till|-)\s*{TIME}",
                  keep=lambda m: all(map(_is_clock, pair(m))))
    both += s.take(rf"(?<![\d.:]){TIME}\s*(?:-|to)\s*{TIME}(?![\d.])", keep=lambda m: all(map(_is_clock, pair(m))))
    if both:
        a, b = pair(both[0])
        out["window"] = {"start": clock(*a), "end": clock(*b)}
        return
    for m in s.take(rf"\b(?:after|from|starting(?: at)?|since|beginning(?: at)?)\s+{TIME}",
                    keep=lambda m: _is_clock(t(m, 1))):
        out.setdefault("window", {"start": None, "end": None})["start"] = clock(*t(m, 1))
    for m in s.take(rf"\b(?:until|till|til|before|up to|through)\s+{TIME}", keep=lambda m: _is_clock(t(m, 1))):
        out.setdefault("window", {"start": None, "end": None})["end"] = clock(*t(m, 1))


def _is_clock(parts) -> bool:
    hour, minute, meridiem = parts
    return minute is not None or meridiem is not None


def _durations(s: _Sentence, out: dict) -> None:
    unit = r"(minutes?|mins?|hours?|hrs?|h|days?)\b"
    for m in s.take(rf"\bfor\s+(?:the\s+)?(?:next\s+)?(\d+(?:\.\d+)?)\s*{unit}"):
        out["duration_min"] = _minutes(m.group(1), m.group(2))
    for m in s.take(rf"\b(?:in|within|over|during)\s+(?:the\s+)?(?:next\s+|coming\s+)?(\d+(?:\.\d+)?)\s*{unit}"):
        out["horizon_min"] = _minutes(m.group(1), m.group(2))
    for m in s.take(rf"\bnext\s+(\d+(?:\.\d+)?)\s*{unit}"):
        out["horizon_min"] = _minutes(m.group(1), m.group(2))


def _minutes(n: str, unit: str) -> float:
    scale = 60 if unit.startswith("h") else 1440 if unit.startswith("d") else 1
    minutes = float(n) * scale
    if minutes <= 0:
        raise IntentError("invalid", f"a duration must be positive, not {n} {unit}", field="duration_min")
    return as_int(minutes)


def _link(s: _Sentence, out: dict) -> None:
    found = s.take(r"\b(s\d+)\s*(?:-|/|<->|to)\s*(s\d+)\b")
    found += s.take(r"\bbetween\s+(s\d+)\s+and\s+(s\d+)\b")
    found += s.take(r"\bfrom\s+(s\d+)\s+to\s+(s\d+)\b")
    if len({(m.group(1), m.group(2)) for m in found}) > 1:
        raise ambiguous("the sentence names more than one link", "Which link?", field="link",
                        options=[f"{m.group(1)}-{m.group(2)}" for m in found])
    if found:
        out["link"] = [found[0].group(1), found[0].group(2)]
        s.take(r"\blinks?\b")


def _scope(s: _Sentence, out: dict) -> None:
    if s.take(r"\bnetwork[- ]wide\b|\bacross (?:the )?(?:whole |entire )?network\b|\beverywhere\b|"
              r"\b(?:in |on |over )?(?:the )?(?:whole|entire) network\b|\b(?:in )?all cells\b"):
        out["scope"] = "network"
    cells = []
    for m in s.take(r"\bcells?\s+(\d+(?:(?:\s*,\s*(?:and\s+)?|\s+and\s+|\s*&\s*)\d+)*)(?:'s)?"):
        cells += [f"c{n}" for n in re.findall(r"\d+", m.group(1))]
    for m in s.take(r"\b(c\d+)\b"):
        cells.append(m.group(1))
    if cells:
        if out.get("scope") == "network":
            raise ambiguous("the sentence names both cells and the whole network", "The whole network, or "
                            f"{', '.join(cells)} only?", field="scope", options=["network", ",".join(cells)])
        out["scope"] = list(dict.fromkeys(cells))


def _traffic_class(s: _Sentence, out: dict) -> None:
    found = []
    for name, pattern in CLASSES:
        if s.take(rf"\b(?:{pattern})\b(?: (?:traffic|sessions?|streams?|flows?|services?|apps?|users?))?"):
            found.append(name)
    if len(found) > 1:
        raise ambiguous(f"the sentence names several traffic classes ({', '.join(found)})",
                        "Which traffic class is meant? (one intent per class)", field="traffic_class", options=found)
    if found:
        out["traffic_class"] = found[0]


_ENTITY = r"\b(u\d+|h\d+|mec\d+|edge\d+|cloud(?!\s+gaming)|s\d+|\d{1,3}(?:\.\d{1,3}){3})\b(?:'s)?"


def _entities(s: _Sentence) -> list[tuple[str, str]]:
    """(name, role from the words before it): role is src | dst | for | pair | on | plain."""
    out = []
    for m in s.take(_ENTITY):
        left = s.text[:m.start()].rstrip()
        left = re.sub(r"\bthe$", "", left).rstrip()
        if m.group(0).endswith("'s"):
            role = "src"
        elif re.search(r"\b(?:from|of)$", left):
            role = "src"
        elif re.search(r"\b(?:to|towards?|reach|with|talking to)$", left):
            role = "dst"
        elif re.search(r"\bbetween$", left):
            role = "pair"
        elif re.search(r"\band$", left) and out and out[-1][1] == "pair":
            role = "pair2"
        elif re.search(r"\bfor$", left):
            role = "for"
        elif re.search(r"\b(?:on|is|does|in)$", left):
            role = "on"
        else:
            role = "plain"
        if re.fullmatch(r"[\d.]+", m.group(1)):
            try:
                ipaddress.IPv4Address(m.group(1))
            except ValueError:
                raise IntentError("invalid", f"{m.group(1)} is not an IPv4 address", field="src") from None
        out.append((m.group(1), role))
    s.take(r"\b(?:talking|communicating|talk|reach|reaching)\b")
    return out


# All MEC nodes at once: "the MEC servers", "every edge node", "all nodes" (a load question about them names no node).
_EVERY_NODE = (r"\b(?:(?:all|every|each)(?: of)?(?: the)? (?:mec |edge )?(?:servers?|nodes?|sites?)|"
               r"(?:the )?(?:mec|edge) (?:servers|nodes|sites|hosts))\b")

# The words of a question that only say what is asked, once the subject is known ("how high is the compute load").
_QUERY_WORDS = (r"\b(?:links?|above|over|exceed|exceeds|more than|(?:go|goes|going) (?:over|above|beyond)|"
                r"utili[sz]ed|utili[sz]ation|percent|compute|high|higher)\b")


def is_question(t: str) -> bool:
    return t.rstrip().endswith("?") or bool(_QUESTION.match(t))


def _action(s: _Sentence, out: dict, entities) -> str:
    if is_question(s.text):
        for subject, pattern in SUBJECTS:
            # "will" alone is no forecast ("how much traffic will cross s1-s2?"): it needs a threshold, unless the
            # sentence asks for a forecast in so many words
            if s.take(pattern) and not (subject == "link_utilization_forecast" and "threshold_pct" not in out
                                        and not re.search(r"\b(?:forecast|predict|predicted)\b", s.text)):
                out["subject"] = subject
                s.take(_QUESTION.pattern)
                s.take(_QUERY_WORDS)
                return "query"
        if "threshold_pct" in out:
            out["subject"] = "link_utilization_forecast"
            s.take(_QUERY_WORDS)
            return "query"
        raise ambiguous("a question the intent layer cannot answer", "Ask about link utilisation forecasts, link "
                        "throughput, compute load, flows or intent status.", field="subject",
                        options=[name for name, _ in SUBJECTS])
    found = [a for a, cue in ACTIONS if s.take(cue)]
    # The allocation verbs (serve, move, put...) are common words: they mean allocation only next to a MEC node or
    # cells, and only when no other verb claims the sentence.
    has_node = any(name.startswith(("mec", "edge")) for name, _ in entities)
    if "allocate_compute" in found and (len(found) > 1 and not has_node or not (has_node or out.get("scope"))):
        found.remove("allocate_compute")
    if "avoid_link" in found and "link" in out:
        found = ["avoid_link"]
    if len(found) > 1:
        raise ambiguous(f"the sentence asks for {' and '.join(found)} at once", "Which one is meant?",
                        field="action", options=found)
    if not found:
        if "link" in out and not out.get("traffic_class"):
            raise ambiguous("a link without a verb", "What should happen on that link (e.g. avoid it)?",
                            field="action", options=["avoid_link"])
        raise IntentError("not_understood", "no intent found: say what to do (cap, block, allow, prioritise, "
                                            "reserve, avoid a link, serve a cell from a node) or ask a question")
    s.take(r"\b(?:bandwidth|speed|rate|top|highest|high|higher|links?|compute|resources|capacity|cpu|maintenance|"
           r"take)\b")
    return found[0]


def _place_entities(action: str, entities, out: dict) -> None:
    scope_extra = []
    for name, role in entities:
        is_node = name.startswith(("mec", "edge"))
        if action in ("allocate_compute", "query") and is_node or action == "query" and name.startswith("s"):
            _set(out, "node", name)
        elif role == "pair":
            _set(out, "src", name)
        elif role == "pair2":
            _set(out, "dst", name)
        elif role == "src" or role == "plain" and action in ("block", "allow", "rate_limit", "prioritize"):
            _set(out, "src", name)
        elif role == "dst":
            _set(out, "dst", name)
        elif role in ("for", "on") and not name.startswith("s"):
            scope_extra.append(name)
        else:
            raise ambiguous(f"cannot tell what {name} is in this sentence", f"Is {name} the source, the "
                            "destination or the scope?", field="src", options=["src", "dst", "scope"])
    if scope_extra:
        if out.get("scope") == "network":
            raise ambiguous("both the network and named entities as scope", "Which scope?", field="scope")
        out["scope"] = list(out.get("scope") or []) + scope_extra


def _set(out: dict, key: str, value: str) -> None:
    if out.get(key) not in (None, value):
        raise ambiguous(f"two values for {key}: {out[key]} and {value}", f"Which {key}?", field=key,
                        options=[out[key], value])
    out[key] = value


def check_required(out: dict, every_node: bool = False) -> None:
    """IntentError(ambiguous) with the question to ask when the action lacks what it needs; `every_node`: the
    sentence asks about all MEC nodes ("the MEC servers"), so a load question needs no node."""
    a = out["action"]
    need = {"rate_limit": ["rate_mbps"], "reserve_bandwidth": ["rate_mbps"], "avoid_link": ["link"],
            "allocate_compute": ["node"] + ([] if out.get("traffic_class") else ["scope"])}.get(a, [])
    for key in need:
        if out.get(key) is None:  # compute is for cells, users or a traffic class ("on mec1 for AR/VR")
            question = {"rate_mbps": "At what rate (e.g. 5 Mbit/s)?", "link": "Which link (e.g. s1-s2)?",
                        "node": "Which MEC node (e.g. mec1)?", "scope": "For which cells or traffic?"}[key]
            raise ambiguous(f"{a} needs {key}", question, field=key)
    # a reservation may name a link alone ("reserve 200 Mbps on the link s3-s4")
    selectors = ("traffic_class", "scope", "src", "dst") + (("link",) if a == "reserve_bandwidth" else ())
    if a in ("block", "allow", "prioritize", "rate_limit", "reserve_bandwidth") and not any(
            out.get(k) for k in selectors):
        raise ambiguous(f"{a} of what traffic?", "Which traffic (a class, cells, a source or a destination)?",
                        field="traffic_class")
    if a == "query":
        subject = out.get("subject")
        if subject == "link_throughput" and not out.get("link"):
            raise ambiguous("throughput of which link?", "Which link (e.g. s1-s2)?", field="link")
        if subject == "compute_load" and not out.get("node") and not every_node:
            raise ambiguous("load of which node?", "Which MEC node (e.g. mec1)?", field="node")
