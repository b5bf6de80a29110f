"""parse_intent: one operator sentence -> HighLevelIntent, or an IntentError that says what to ask.

    parse_intent("cap video in cell 2 at 5 Mbit/s between 08:00 and 18:00")
    -> HighLevelIntent(action=rate_limit, traffic_class=video_streaming, scope=["c2"], rate_mbps=5,
                       window={"start": "08:00", "end": "18:00"})

Every sentence first passes netgpt.intent.text.checked (empty, too long, smuggled instructions: refused before any
reader sees it). The deterministic rules (netgpt.intent.rules) read it next; `understand` also reports how much of the
sentence they read (`confidence`) and which words they did not.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from netgpt.core.messages import HighLevelIntent, first_error
from netgpt.intent.rules import read as read_rules
from netgpt.intent.errors import IntentError
from netgpt.intent.lm import default_reader
from netgpt.intent.text import checked


@dataclass
class Understanding:
    intent: HighLevelIntent
    confidence: float
    by: str  # "rules" or "lm"
    unread: list[str] = field(default_factory=list)
    corrected: list[str] = field(default_factory=list)  # misspelt keywords the rules read as the keyword


def understand(text: str, lm="default") -> Understanding:
    """Rules first; they are certain only of a sentence they read completely. The LM reader (`lm`: an IntentLM,
    "default" for the process's one, None for none) is asked when the rules find no intent (not_understood) or leave
    words unread (a typo, an unusual word). Its reading must be grounded and valid (netgpt.intent.lm), and where the
    rules read a field, agree with them: the LM fills what the rules could not read, it does not overrule what they
    did. Otherwise the rules' reading (or their error) stands. Errors the rules are sure of (ambiguous, invalid,
    refused) are never handed to the LM."""
    t = checked(text)
    rules_error, ours = None, None
    try:
        reading = read_rules(t, raw=text)
        ours = Understanding(_validated(reading.fields), reading.confidence, "rules", reading.unread,
                             reading.corrected)
        if not reading.unread:
            return ours
    except IntentError as exc:
        if exc.kind != "not_understood":
            raise
        rules_error = exc
    reader = default_reader() if lm == "default" else lm
    if reader is not None:
        try:
            fields, confidence = reader.read(t)
            theirs = _validated(fields)
            if ours is None or _agrees(theirs, ours.intent):
                return Understanding(theirs, confidence, "lm")
        except IntentError as exc:  # of the LM's own errors only a clarification request is worth passing on
            if ours is None and exc.kind == "ambiguous":
                raise
    if ours is not None:
        return ours
    raise rules_error


def _agrees(lm: HighLevelIntent, rules: HighLevelIntent) -> bool:
    """Every field the rules set has the same value in the LM's reading."""
    mine = rules.model_dump(exclude_none=True)
    return all(lm.model_dump().get(k) == v for k, v in mine.items())


def parse_intent(text: str, lm="default") -> HighLevelIntent:
    """The intent in `text`; IntentError (its .problem is an IntentProblem) when there is none to act on."""
    return understand(text, lm=lm).intent


def _validated(fields: dict) -> HighLevelIntent:
    try:
        return HighLevelIntent(**fields)
    except ValidationError as exc:
        raise IntentError("invalid", first_error(exc.errors(), skip=()), field=str(exc.errors()[0]["loc"][0])) \
            from None
