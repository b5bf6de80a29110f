"""Location-aware prompt completion on the edge, faithful by construction.

A tiny edge LM writing the completed prompt freely would invent places and times. So the work is split:
  1. which facts matter: the request's service class (from the user-intent model) and its wording pick fact kinds
     (city and local time always; points of interest for things to see or eat; coordinates for routes);
  2. the facts themselves are inserted verbatim from the cell's CellContext (edge_agent/location.py);
  3. the edge LM (with its `complete` adapter when loaded) may add a short continuation of the request; it is kept only
     when the LM is confident, and any sentence of it carrying a fact the context does not state is removed
     (edge_agent/location_check.scrub).
The context also answers plain location lookups ("what time is it here?") exactly, without any LM: `context_answer`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime

from edge_agent.location import CellContext
from edge_agent.location_check import scrub
from netgpt.messages import ServiceClass

ALWAYS = ("city", "local_time")
# Wording that asks for more than the city and time. Checked on the lower-cased request.
CUES: dict[str, re.Pattern] = {
    "points_of_interest": re.compile(r"\b(see|visit|sights?|sightseeing|things to do|tour|walk|museum|eat|food|"
                                     r"restaurant|lunch|dinner|breakfast|coffee|cafe|bar|drink|shop|shopping|near(by| me)?|"
                                     r"around here|landmark|attraction|photo|picnic|date|kids)\b"),
    "coordinates": re.compile(r"\b(route|directions?|drive|driving|how far|distance|coordinates|gps|latitude|"
                              r"longitude|map|navigate|where am i)\b"),
    "area_type": re.compile(r"\b(traffic|parking|park my|quiet|busy|crowd|crowded|safe|neighbou?rhood|noise|"
                            r"cycling|bike|run|running|jog)\b"),
    "timezone": re.compile(r"\b(time ?zone|utc|gmt|jet ?lag|call (home|someone|my))\b"),
    "date": re.compile(r"\b(today|tonight|tomorrow|this (week|weekend|evening|morning|afternoon)|date|day|open|"
                       r"opening|closed|schedule|weather|wear|season|holiday)\b"),
}
SERVICE_KINDS: dict[ServiceClass, tuple[str, ...]] = {
    ServiceClass.navigation: ("coordinates", "points_of_interest"),
    ServiceClass.ar_vr: ("points_of_interest",),
}


def select_fact_kinds(text: str, service: ServiceClass | None = None) -> list[str]:
    """The fact kinds this request needs, in the order the completion states them."""
    lowered = text.lower()
    kinds = set(ALWAYS) | set(SERVICE_KINDS.get(service, ()))  # type: ignore[arg-type]
    kinds |= {kind for kind, cue in CUES.items() if cue.search(lowered)}
    order = ("city", "local_time", "timezone", "date", "area_type", "coordinates", "points_of_interest")
    return [k for k in order if k in kinds]


def context_sentence(ctx: CellContext, kinds: list[str], now: datetime | float | None = None) -> str:
    """The selected facts, stated verbatim from the context, in the user's voice."""
    f = ctx.facts(now)
    parts = [f"I am in {f['city']}, {f['country']}"]
    if "area_type" in kinds:
        parts[0] += f" (a {f['area_type']})"
    when = f"the local time is {f['local_time']}"
    if "timezone" in kinds:
        when += f" ({f['timezone']} time zone)"
    if "date" in kinds:
        when += f" on {f['weekday']} {f['date']}"
    parts.append(when)
    if "coordinates" in kinds:
        parts.append(f"my position is {f['coordinates']}")
    text = "; ".join(parts) + "."
    if "points_of_interest" in kinds:
        text += f" Places near me: {f['points_of_interest']}."
    return text


@dataclass
class LMText:
    """What the edge LM produced, with its token counts and how sure it was (mean log-probability per token)."""

    text: str
    tokens_in: int
    tokens_out: int
    mean_logprob: float

    @property
    def confidence(self) -> float:
        """Geometric-mean token probability, in 0..1."""
        return math.exp(self.mean_logprob) if self.tokens_out else 0.0


@dataclass
class CompletedPrompt:
    text: str
    fact_kinds: list[str]
    edge_tokens_in: int = 0
    edge_tokens_out: int = 0
    flags: list[str] = field(default_factory=list)


def complete_prompt(text: str, ctx: CellContext, now: datetime | float | None = None,
                    service: ServiceClass | None = None, lm=None, draft_tokens: int = 12,
                    draft_min_confidence: float = 0.35) -> CompletedPrompt:
    """The user's request completed with the facts that matter. `lm` (an EdgeLM, optional) may add a continuation."""
    kinds = select_fact_kinds(text, service)
    request = text.strip()
    flags: list[str] = []
    tokens_in = tokens_out = 0
    if lm is not None and draft_tokens > 0:
        draft = lm.generate(request, max_tokens=draft_tokens, stop_at_sentence=True)
        tokens_in, tokens_out = draft.tokens_in, draft.tokens_out
        clean, removed = scrub(draft.text, ctx, now, also_allowed=request)
        if removed:
            flags.append("edge_draft_fact_removed")
        if clean and draft.confidence >= draft_min_confidence and not removed:
            request = f"{request} {clean}".strip()
            flags.append("edge_draft_used")
    # Question first, facts after, and an explicit opening: SmolLM2-135M (the offline cloud) drifts into French for a
    # French city and echoes the facts instead of answering when they come first (tried on a few prompts by hand).
    completed = (f"{request}\n({context_sentence(ctx, kinds, now)})\n"
                 f"Answer the question in English. Start with: In {ctx.city},")
    return CompletedPrompt(completed, kinds, tokens_in, tokens_out, flags)


# --- exact answers from the context ----------------------------------------------------------------------------------

LOOKUPS: list[tuple[str, re.Pattern]] = [
    ("timezone", re.compile(r"\btime ?zone\b")),
    ("time", re.compile(r"\b(what time is it|what'?s the time|what is the time|local time|time is it|time now|"
                        r"current time|the time here)\b")),
    ("date", re.compile(r"\b(what day is it|what'?s the date|what is the date|today'?s date|which day is it|"
                        r"what day is today)\b")),
    ("coordinates", re.compile(r"\b(coordinates|latitude|longitude|gps position|my position)\b")),
    ("where", re.compile(r"\b(where am i|which (city|town|country) am i|what (city|town|country) am i|"
                         r"what (city|town|country) is this|which (city|town|country) is this)\b")),
    ("sights", re.compile(r"\b(what (is there )?to see|things to (see|do)|sights|landmarks|attractions|"
                          r"points of interest|worth (a )?visit(ing)?|what should i visit|places to visit)\b")),
]


def context_answer(text: str, ctx: CellContext, now: datetime | float | None = None) -> str | None:
    """An exact answer when the request is a plain lookup of the cell's context, else None."""
    lowered = text.lower()
    f = ctx.facts(now)
    answers = {
        "timezone": f"{f['city']} is in the {f['timezone']} time zone; the local time is {f['local_time']}.",
        "time": f"It is {f['local_time']} on {f['weekday']} {f['date']} in {f['city']} ({f['timezone']}).",
        "date": f"Today is {f['weekday']} {f['date']} in {f['city']}; the local time is {f['local_time']}.",
        "coordinates": f"You are in {f['city']}, {f['country']}, at about {f['coordinates']}.",
        "where": f"You are in {f['city']}, {f['country']} ({f['area_type']}, about {f['coordinates']}).",
        "sights": f"Worth seeing in {f['city']}: {f['points_of_interest']}. The local time is {f['local_time']}.",
    }
    for kind, pattern in LOOKUPS:
        if pattern.search(lowered):
            return answers[kind]
    return None
