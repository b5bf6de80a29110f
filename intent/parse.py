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
from netgpt.intent.text import checked


@dataclass
class Understanding:
    intent: HighLevelIntent
    confidence: float
    by: str  # "rules" or "lm"
    unread: list[str] = field(default_factory=list)


def understand(text: str) -> Understanding:
    t = checked(text)
    reading = read_rules(t, raw=text)
    return Understanding(_validated(reading.fields), reading.confidence, "rules", reading.unread)


def parse_intent(text: str) -> HighLevelIntent:
    """The intent in `text`; IntentError (its .problem is an IntentProblem) when there is none to act on."""
    return understand(text).intent


def _validated(fields: dict) -> HighLevelIntent:
    try:
        return HighLevelIntent(**fields)
    except ValidationError as exc:
        raise IntentError("invalid", first_error(exc.errors(), skip=()), field=str(exc.errors()[0]["loc"][0])) \
            from None
