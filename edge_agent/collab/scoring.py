"""How the collaboration bench (bench/collab.py) scores an answer: only text the cloud generated.

`cloud_generated_text` (engine.py) is the part of a response the cloud wrote: nothing when the edge answered (an exact
lookup, a facts-only answer, its LM), and never the prefill mode's opener. `score_cloud_text` grades that text against
one held-out prompt (edge_agent/data/collab_heldout.jsonl: its fact kinds and topic pattern):

  topic       the request is answered: share of the prompt's topic groups matched (one group each in the held-out set)
  facts       the location facts are used correctly: share of the prompt's fact kinds named in the cloud's own text
              with a value true for the cell at that instant (city, country, local time within a minute, on a 24- or
              12-hour clock, weekday, time zone by IANA name or its abbreviation then, any point of interest, latitude)
  wrong       facts in the cloud's text that the cell's context contradicts (fact_check.unsupported_facts; the user's
              own words are allowed): places, clock times, weekdays, months, coordinates, time zones
  echo        the text mostly repeats what it was sent (>= 60% of its word trigrams occur in the prompt and system
              message): an echo is not an answer, it scores 0 on topic and facts

Empty text (the edge answered, or the cloud only continued the edge's opener with nothing) scores 0 on topic and
facts, and 0 wrong facts.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime

from netgpt.edge_agent.location.cells import CellContext
from netgpt.edge_agent.location.fact_check import normalise, unsupported_facts

ECHO_SHARE = 0.6


def fact_values(ctx: CellContext, now: datetime | float) -> dict[str, list[str]]:
    """Accepted spellings of each fact kind at `now`."""
    when = now.timestamp() if isinstance(now, datetime) else float(now)
    times = []
    for delta in (-60, 0, 60):
        t = ctx.local_time(when + delta)
        times += [t.strftime("%H:%M"), f"{t.hour % 12 or 12}:{t.minute:02d}"]
    f = ctx.facts(when)
    return {"city": [ctx.city], "country": [ctx.country], "local_time": times, "weekday": [f["weekday"]],
            "timezone": [ctx.timezone, ctx.local_time(when).strftime("%Z")], "poi": list(ctx.points_of_interest),
            "coordinates": [f["coordinates"].split(",")[0]]}


def _named(text: str, value: str) -> bool:
    """`value` in `text` (both accent-free, lower case), as whole words where it starts or ends with a letter."""
    v = re.escape(normalise(value))
    return re.search(rf"(?<![a-z0-9]){v}(?![a-z0-9])", text) is not None


def facts_used(text: str, kinds: list[str], ctx: CellContext, now: datetime | float) -> float:
    values = fact_values(ctx, now)
    low = normalise(text)
    hits = [any(_named(low, v) for v in values[k]) for k in kinds]
    return sum(hits) / len(hits) if hits else 0.0


def on_topic(text: str, topic: list[str], ctx: CellContext, now: datetime | float) -> float:
    values = fact_values(ctx, now)
    fill = {k: "|".join(v) for k, v in values.items()}
    low = normalise(text)
    groups = [normalise(g.format(**fill)) for g in topic]
    hits = [any(alt and alt in low for alt in g.split("|")) for g in groups]
    return sum(hits) / len(hits) if hits else 0.0


def _trigrams(text: str) -> list[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9']+", normalise(text))
    return [tuple(words[i:i + 3]) for i in range(len(words) - 2)]


def echo_share(text: str, sent: str) -> float:
    """Share of `text`'s word trigrams that occur in `sent` (what the cloud was given)."""
    grams = _trigrams(text)
    if not grams:
        return 0.0
    given = set(_trigrams(sent))
    return sum(g in given for g in grams) / len(grams)


@dataclass(frozen=True)
class CloudScore:
    topic: float
    facts: float
    wrong: int
    echo: bool
    words: int  # words of cloud-generated text scored

    def as_dict(self) -> dict:
        return asdict(self)


def score_cloud_text(text: str, prompt: dict, ctx: CellContext, now: datetime | float, sent: str = "") -> CloudScore:
    """Grade the cloud's own text for one prompt (see the module docstring). `sent`: the prompt and system message the
    cloud was given, for the echo test."""
    text = text.strip()
    if not text:
        return CloudScore(0.0, 0.0, 0, False, 0)
    echo = bool(sent) and echo_share(text, sent) >= ECHO_SHARE
    wrong = len(unsupported_facts(text, ctx, now, also_allowed=prompt["text"]))
    if echo:
        return CloudScore(0.0, 0.0, wrong, True, len(text.split()))
    return CloudScore(on_topic(text, prompt["topic"], ctx, now), facts_used(text, prompt["facts"], ctx, now), wrong,
                      False, len(text.split()))
