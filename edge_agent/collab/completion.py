"""Location-aware prompt completion on the edge, faithful by construction.

A tiny edge LM writing the completed prompt freely would invent places and times. So the work is split:
  1. which facts matter, decided once per request (`select_facts` -> RequestFacts): the request's service class (from
     the user-intent model) and its wording pick fact kinds (city and local time always; points of interest for things
     to see or eat; coordinates for routes); the cell's points of interest are ranked against the request by their
     notes (MiniLM); the instant whose local time is stated is fixed there too;
  2. every output renders that one selection, with the facts stated verbatim from the cell's CellContext
     (edge_agent/location/cells.py): the completed prompt and its system message for the cloud (`complete_prompt`),
     the exact answer to a plain lookup such as "what time is it here?" (`context_answer`, no LM), what the node knows
     when the edge cannot answer (`known_facts`), and the facts alone for a system message (`retrieval_system`, the
     bench's retrieval baseline);
  3. the edge LM (with its `complete` adapter when loaded) may add a short continuation of the request; it is kept only
     when the LM is confident, and any sentence of it carrying a fact the context does not state is removed
     (RequestFacts.scrub, i.e. edge_agent/location/fact_check.py against the same cell, instant and request).

The cloud is asked the question and answers it in its own words: nothing tells it how to begin. The opener
("In Osaka, Japan, at 23:05, Dotonbori") exists only for the prefill mode (`prefill=True`, off by default), where it is
sent as the begun answer; it is then the edge's text, reported apart from the cloud's (EdgePromptResponse.answer_edge_prefix).
"""
from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Callable, Mapping, Sequence

import numpy as np

from netgpt.core.messages import ServiceClass
from netgpt.edge_agent.location.cells import CellContext
from netgpt.edge_agent.location.fact_check import Unsupported, scrub
from netgpt.edge_agent.user_intent.classifier import embed_texts
from netgpt.models.complete_task import completion_sentence, lm_prompt

log = logging.getLogger(__name__)

Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> unit vectors, one row each

# --- 1. the selection: once per request -------------------------------------------------------------------------------

ALWAYS = ("city", "local_time")
# Wording that asks for more than the city and time. Checked on the lower-cased request.
CUES: dict[str, re.Pattern] = {
    "points_of_interest": re.compile(r"\b(see|visit|sights?|sightseeing|things to do|tour|walk|museum|eat|food|"
                                     r"restaurant|lunch|dinner|breakfast|coffee|cafe|bar|drink|shop|shopping|near(by| me)?|"
                                     r"around here|landmark|attraction|photo|picnic|a date|date (idea|night)|kids|"
                                     r"night out|nightlife|neighbou?rhood|explore|"
                                     r"where (is|are|can|could|do|should)|where's|try)\b"),
    "coordinates": re.compile(r"\b(route|directions?|drive|driving|how far|distance|coordinates|gps|latitude|"
                              r"longitude|map|navigate|where am i)\b"),
    "area_type": re.compile(r"\b(traffic|parking|park my|quiet|busy|crowd|crowded|safe|neighbou?rhood|noise|"
                            r"cycling|bike|run|running|jog)\b"),
    "timezone": re.compile(r"\b(time ?zone|utc|gmt|jet ?lag|call (home|someone|my)|time difference|"
                           r"hours? (ahead|behind)|(ahead|behind) of)\b"),
    "date": re.compile(r"\b(today|tonight|tomorrow|this (week|weekend|evening|morning|afternoon)|date|day|open|"
                       r"opening|closed|schedule|weather|wear|season|holiday)\b"),
}
SERVICE_KINDS: dict[ServiceClass, tuple[str, ...]] = {
    ServiceClass.navigation: ("coordinates", "points_of_interest"),
    ServiceClass.ar_vr: ("points_of_interest",),
}
# A request this close (cosine, MiniLM) to a point of interest's name and note asks about places even without a cue
# word ("I'm hungry" and a food market). Chosen on bench/collab_dev_prompts.jsonl.
POI_MIN_SIMILARITY = 0.30
# Requests whose answer depends on the clock: only these get the local time in the compact (routed) form.
TIME_CUE = re.compile(r"\b(now|right now|currently|tonight|today|late|early|still|soon|open|close[ds]?|hours?|time|"
                      r"when|morning|afternoon|evening|night|lunch|dinner|breakfast|brunch|plan|schedule|call)\b")


def rank_places(text: str, ctx: CellContext, embed: Embed = embed_texts) -> list[tuple[str, float]]:
    """The cell's points of interest, most relevant to the request first, with their cosine similarity to it. `embed`:
    the MiniLM encoder of the user-intent model by default. A place without a note is ranked by its name alone."""
    names = list(ctx.points_of_interest)
    try:
        vectors = embed([text] + [f"{n}: {ctx.poi_notes.get(n, '')}" for n in names])
    except (ImportError, RuntimeError, OSError) as exc:  # no encoder installed: the configured order, cue words only
        log.warning("points of interest not ranked (%s); using the configured order", exc)
        return [(n, 0.0) for n in names]
    sims = vectors[1:] @ vectors[0]
    return sorted(zip(names, (float(x) for x in sims)), key=lambda pair: -pair[1])


def select_fact_kinds(text: str, service: ServiceClass | None = None,
                      places: Sequence[tuple[str, float]] | None = None) -> list[str]:
    """The fact kinds this request needs, in the order the completion states them. `places` (rank_places) adds the
    points of interest when the request is close to one of them."""
    lowered = text.lower()
    kinds = set(ALWAYS) | set(SERVICE_KINDS.get(service, ()))  # type: ignore[arg-type]
    kinds |= {kind for kind, cue in CUES.items() if cue.search(lowered)}
    if places and places[0][1] >= POI_MIN_SIMILARITY:
        kinds.add("points_of_interest")
    order = ("city", "local_time", "timezone", "date", "area_type", "coordinates", "points_of_interest")
    return [k for k in order if k in kinds]


def compact_kinds(text: str, kinds: Sequence[str]) -> list[str]:
    """Of the selected kinds, only those the request needs: the city always, the clock only when it matters."""
    keep = {"city", "points_of_interest", "timezone", "date"} & set(kinds)
    if TIME_CUE.search(text.lower()):
        keep.add("local_time")
    return [k for k in kinds if k in keep] or ["city"]


@dataclass(frozen=True)
class RequestFacts:
    """What one request is told about its cell: selected once (select_facts), rendered into every output, so the
    completed prompt, the opener, the edge's own answers and the fact check all state the same facts."""

    request: str  # the user's words, stripped
    ctx: CellContext
    now: datetime | float  # the one instant whose local time, weekday and date every output states
    facts: Mapping[str, str]  # ctx.facts(now): the exact strings stated (read-only)
    kinds: tuple[str, ...]  # the fact kinds the request needs, in the order they are stated
    places: tuple[tuple[str, float], ...]  # the points of interest and their similarity to the request, best first

    @property
    def compact(self) -> list[str]:
        """Of the kinds, what the compact (routed) form sends."""
        return compact_kinds(self.request, self.kinds)

    @property
    def place_names(self) -> list[str]:
        return [name for name, _ in self.places]

    @property
    def best_place(self) -> str:
        return self.places[0][0]  # a cell has at least one point of interest (CellContext)

    def scrub(self, text: str) -> tuple[str, list[Unsupported]]:
        """`text` (the edge LM's) without its sentences that state a fact this cell does not, at this instant; facts
        in the user's own words are theirs, not the edge's invention. Returns (kept text, what was removed)."""
        return scrub(text, self.ctx, self.now, also_allowed=self.request)


def select_facts(text: str, ctx: CellContext, now: datetime | float | None = None,
                 service: ServiceClass | None = None, embed: Embed = embed_texts) -> RequestFacts:
    """The request's fact selection: ranks the points of interest (one MiniLM call) and picks the fact kinds."""
    request = text.strip()
    now = time.time() if now is None else now
    ranked = rank_places(request, ctx, embed)
    kinds = select_fact_kinds(request, service, ranked)
    return RequestFacts(request, ctx, now, MappingProxyType(ctx.facts(now)), tuple(kinds), tuple(ranked))


# --- 2. rendering the selection ---------------------------------------------------------------------------------------


def context_sentence(f: RequestFacts, kinds: Sequence[str], to_user: bool = False) -> str:
    """The facts of `kinds`, stated verbatim, in the user's voice (or, `to_user`, addressed to the user, for answers
    the edge gives itself). Points of interest are listed most relevant first, the two first with their notes."""
    fact = f.facts
    who, my, near = ("You are", "your", "Places nearby") if to_user else ("I am", "my", "Places near me")
    parts = [f"{who} in {fact['city']}, {fact['country']}"]
    if "area_type" in kinds:
        parts[0] += f" (a {fact['area_type']})"
    when = f"the local time is {fact['local_time']}"
    if "timezone" in kinds:
        when += f" ({fact['timezone']} time zone)"
    if "date" in kinds:
        when += f" on {fact['weekday']} {fact['date']}"
    parts.append(when)
    if "coordinates" in kinds:
        parts.append(f"{my} position is {fact['coordinates']}")
    text = "; ".join(parts) + "."
    if "points_of_interest" in kinds:
        notes = f.ctx.poi_notes
        described = [f"{n} ({notes[n]})" if i < 2 and n in notes else n for i, n in enumerate(f.place_names)]
        text += f" {near}: {', '.join(described)}."
    return text


def known_facts(f: RequestFacts) -> str:
    """What the edge says when it cannot answer: the facts the request needs, addressed to the user."""
    return "What this node knows: " + context_sentence(f, f.kinds, to_user=True)


def cloud_system(f: RequestFacts) -> str:
    """A short system message: the user's location is given, the answer is for that place, in English. (A longer one,
    "You are a helpful local assistant...", made SmolLM2-135M refuse as "a local Japanese assistant".)"""
    city, country = f.facts["city"], f.facts["country"]
    return f"The user is in {city}, {country}. Answer for {city}, in English, briefly."


def opener(f: RequestFacts, kinds: Sequence[str]) -> str:
    """The prefill mode's begun answer (off by default): the place and the clock facts, and the most relevant point of
    interest when the request is about places. Edge text, never counted as the cloud's."""
    fact = f.facts
    text = f"In {fact['city']}, {fact['country']}"
    if "timezone" in kinds:
        text += f" ({fact['timezone']} time zone)"
    if "local_time" in kinds:
        text += f", at {fact['local_time']}"
    if "date" in kinds:
        text += f" on {fact['weekday']}"
    return text + (f", {f.best_place}" if "points_of_interest" in kinds else ",")


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
    fact_kinds: list[str]  # the kinds the prompt states
    edge_tokens_in: int = 0
    edge_tokens_out: int = 0
    flags: list[str] = field(default_factory=list)
    system: str | None = None  # the system message for the cloud (None: the engine's default)
    opener: str = ""  # prefill mode only: the begun answer the cloud continues (edge text)
    prefilled: bool = False  # the opener is sent as the start of the answer
    draft: str = ""  # the edge LM's words added to the request ("" when it added none)


COMPLETION_TOKENS = 40  # the edge LM's completion sentence is ~20 tokens (models/complete_task.py)
_CONNECTIVES = re.compile(r"^[\s,;.:'\-]*$")
_GROUNDED_WORDS = frozenset({"i", "am", "in", "near", "it", "is", "and", "the", "at", "on", "close", "to", "by", "now"})


def lm_input(f: RequestFacts) -> str:
    """What the edge LM reads: the request and the cell's context (city, country, its places with their notes in the
    configured order, weekday and clock), in the `complete` task's format (models/complete_task.lm_prompt)."""
    fact = f.facts
    places = [(name, f.ctx.poi_notes.get(name, "")) for name in f.ctx.points_of_interest]
    return lm_prompt(f.request, fact["city"], fact["country"], fact["weekday"], fact["local_time"], places)


def rule_additions(f: RequestFacts) -> str:
    """What the rules add after the completion sentence, LM or not: the time zone or position when the request's
    wording asks for them (the `complete` task does not state these)."""
    fact, extra = f.facts, []
    if "timezone" in f.kinds:
        extra.append(f" My time zone is {fact['timezone']}.")
    if "coordinates" in f.kinds:
        extra.append(f" My position is {fact['coordinates']}.")
    return "".join(extra)


def template_sentence(f: RequestFacts) -> str:
    """The completion without an LM: the sentence the `complete` task teaches, with the facts the rules select
    (city and country always; the best-ranked place when the request is about places; weekday and clock when its
    wording depends on the time of day)."""
    fact = f.facts
    place = f.best_place if "points_of_interest" in f.kinds else None
    clock = (fact["weekday"], fact["local_time"]) if TIME_CUE.search(f.request.lower()) else None
    return completion_sentence(fact["city"], fact["country"], place, clock)


def sentence_options(f: RequestFacts) -> list[str]:
    """Every sentence the `complete` task can write for this cell now (its targets' form, leading space included):
    the city and country, with or without one of the cell's places, with or without the weekday and clock. All true
    by construction; constrained decoding (EdgeLM.choose) lets the LM pick among them only."""
    fact = f.facts
    clocks = (None, (fact["weekday"], fact["local_time"]))
    return [completion_sentence(fact["city"], fact["country"], place, clock)
            for place in (None, *f.ctx.points_of_interest) for clock in clocks]


def grounded(f: RequestFacts, text: str) -> bool:
    """The LM's sentence states only the cell's context: once the context's strings (city, country, places, weekday,
    clock) are taken out, only connecting words are left (no other name, number or claim), and the fact checker
    finds nothing it contradicts."""
    if not text.strip() or f.scrub(text)[1]:
        return False
    fact = f.facts
    rest = text
    for value in sorted([fact["city"], fact["country"], fact["weekday"], fact["local_time"],
                         *f.ctx.points_of_interest], key=len, reverse=True):
        rest = re.sub(re.escape(value), " ", rest, flags=re.IGNORECASE)
    words = re.findall(r"[A-Za-z0-9']+", rest)
    return all(w.lower() in _GROUNDED_WORDS for w in words) and bool(_CONNECTIVES.match(re.sub(r"[A-Za-z0-9']+", "", rest)))


_QUESTION_START = re.compile(r"^(what|where|when|which|who|whom|whose|why|how|is|are|am|can|could|should|shall|will|"
                             r"would|do|does|did|may|might|any|anything|anywhere|somewhere)\b", re.IGNORECASE)


def ended(request: str) -> str:
    """The user's words with an end mark when they have none ("?" for a question, else "."), so that they read as a
    sentence of their own after the edge's."""
    request = request.rstrip()
    if not request or request[-1] in ".!?":
        return request
    return request + ("?" if _QUESTION_START.match(request) else ".")


def complete_prompt(f: RequestFacts, lm=None, draft_tokens: int = 12, draft_min_confidence: float = 0.0,
                    compact: bool = False, prefill: bool = False, constrained: bool = False) -> CompletedPrompt:
    """The user's request completed with the facts relevant to it: one short sentence of facts, "I am in Osaka,
    Japan, near Dotonbori; it is Saturday 19:05.", then the user's words verbatim (the 135M cloud answers what it
    reads last: see the README's collaboration section). The sentence is what the edge LM (`lm`, with
    its `complete` adapter) writes from the cell's context (`lm_input`), or the rules (`template_sentence`) without an
    LM (`lm` None or `draft_tokens` 0), or when the LM's sentence is not grounded in the context (flag
    `edge_completion_rejected`) or below `draft_min_confidence`. The time zone and position follow when the wording
    asks for them (`rule_additions`).
    `compact` (routed mode): the user's words and one short bracketed line of the facts, no LM.
    `prefill` (off by default; the cloud must speak continue_final_message): the answer is begun by the opener, which
    the cloud continues; the opener is edge text, not the cloud's.
    `constrained`: the LM's sentence is decoded among `sentence_options` only (EdgeLM.choose), so it is one of the
    task's true sentences and the LM's part is the choice of facts; it is still checked as above."""
    request = f.request
    flags: list[str] = []
    tokens_in = tokens_out = 0
    draft = ""
    if compact:  # routed: only the facts the request needs, one short line
        kinds = list(f.compact)
        fact = f.facts
        facts = [f"{fact['city']}, {fact['country']}"]
        clock = [fact["local_time"]] if "local_time" in kinds else []
        clock += [fact["weekday"]] if "date" in kinds else []
        if clock:
            facts.append(" ".join(clock))
        if "timezone" in kinds:
            facts.append(fact["timezone"])
        if "points_of_interest" in kinds:  # the most relevant place only: a list gets listed back
            best, note = f.best_place, f.ctx.poi_notes.get(f.best_place)
            facts.append(f"{best}: {note}" if note is not None else best)
        completed = f"{request}\n[{'; '.join(facts)}]"
    else:
        kinds = list(f.kinds)
        sentence = ""
        if lm is not None and draft_tokens > 0:
            out = (lm.choose(lm_input(f), sentence_options(f))[1] if constrained
                   else lm.generate(lm_input(f), max_tokens=COMPLETION_TOKENS))
            tokens_in, tokens_out = out.tokens_in, out.tokens_out
            text = re.split(r"(?<=[.!?])\s", out.text.strip())[0]  # one sentence, as trained
            if grounded(f, text) and out.confidence >= draft_min_confidence:
                sentence = draft = text
                flags.append("edge_lm_completion")
            else:
                flags.append("edge_completion_rejected")
        if not sentence:
            sentence = template_sentence(f).strip()
        completed = f"{sentence}{rule_additions(f)} {ended(request)}"  # the request last: what the cloud answers
    start = opener(f, kinds) if prefill else ""
    return CompletedPrompt(completed, kinds, tokens_in, tokens_out, flags, cloud_system(f), start,
                           prefilled=prefill, draft=draft)


def retrieval_system(f: RequestFacts) -> str:
    """The same facts as the completed prompt, as a system message for the raw request (plain retrieval, no edge LM
    and no rewriting: the bench's `retrieval` baseline)."""
    return (f"{cloud_system(f)} What is known about the user's location: "
            f"{context_sentence(f, f.kinds, to_user=True)}")


# --- 3. exact answers from the context --------------------------------------------------------------------------------

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
                          r"points of interest|worth (a )?visit(ing)?|what should i visit|places to (see|visit)|"
                          r"what'?s (there )?(nearby|around here)|what is (there )?(nearby|around here))\b")),
]


def context_answer(f: RequestFacts) -> str | None:
    """An exact answer when the request is a plain lookup of the cell's context, else None."""
    lowered = f.request.lower()
    fact = f.facts
    answers = {
        "timezone": f"{fact['city']} is in the {fact['timezone']} time zone; the local time is {fact['local_time']}.",
        "time": f"It is {fact['local_time']} on {fact['weekday']} {fact['date']} in {fact['city']} "
                f"({fact['timezone']}).",
        "date": f"Today is {fact['weekday']} {fact['date']} in {fact['city']}; the local time is {fact['local_time']}.",
        "coordinates": f"You are in {fact['city']}, {fact['country']}, at about {fact['coordinates']}.",
        "where": f"You are in {fact['city']}, {fact['country']} ({fact['area_type']}, about {fact['coordinates']}).",
        "sights": f"Worth seeing in {fact['city']}: {fact['points_of_interest']}. "
                  f"The local time is {fact['local_time']}.",
    }
    for kind, pattern in LOOKUPS:
        if pattern.search(lowered):
            return answers[kind]
    return None
