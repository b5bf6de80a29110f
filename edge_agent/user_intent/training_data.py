"""GENERATED training prompts for user-intent inference: templates x slot lists, per service class.

Nothing here was written as an example of a real user prompt. Each class has a handful of sentence templates with
`{slot}` placeholders and a few slot lists; `generate_training_set()` fills them at random (seeded, so the output is
the same on every run) and wraps some in a polite prefix or suffix.

How this relates to the hand-written held-out set (edge_agent/data/user_intent_heldout.jsonl, committed first):
- Two registers of templates: formal, well-spelt English assistant commands (TEMPLATES, wrapped in polite prefixes and
  suffixes: "Please start a video call with my aunt.") and terse lower-case chat commands (CASUAL_TEMPLATES: "call
  my aunt"). The casual set was added after the first held-out run (0.89 with the formal set and embeddings only).
  Neither is misspelt, indirect or in another language, as many held-out prompts are: the held-out score measures
  generalisation to phrasings the model never saw.
- The slot lists avoid the named things the held-out prompts mention (apps, games, titles, landmarks), so a held-out
  prompt cannot be matched by a memorised name alone.
- No held-out sentence is copied; tests/user_intent/test_data.py asserts that no held-out prompt, and no near-duplicate
  of one (same normalised text, or high word overlap), is in the generated set.
- The same person wrote both, after the held-out set was committed; that bias is stated in edge_agent/data/README.md.

Each sample carries a `template` id ("<class>/<n>") so that validation can hold out whole templates (a fairer
calibration check than random rows, which share templates with the training rows).
"""
from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass

from netgpt.core.messages import ServiceClass

SC = ServiceClass

# --- slot lists (shared where the same kind of thing appears in several classes) -------------------------------------

PEOPLE = ["my father", "my brother", "Sarah", "my landlord", "Dr. Patel", "my aunt", "Carlos", "my manager",
          "my insurer", "my best friend", "the school office", "Mrs. Okafor", "my grandmother"]
TIMES = ["nine o'clock", "noon", "half past two", "4 pm", "the top of the hour", "eleven"]

SLOTS: dict[str, list[str]] = {
    # video
    "title": ["the latest spy thriller", "Inception", "a wildlife documentary", "the season finale", "Toy Story",
              "the evening news bulletin", "an old western", "the cooking competition show", "a stand-up special"],
    "vplatform": ["YouTube", "Disney+", "Prime Video", "Hulu", "HBO Max", "Twitch", "Apple TV", "Vimeo", "Peacock"],
    "series": ["Stranger Things", "The Crown", "Breaking Bad", "The Office", "Friends", "The Mandalorian", "Succession"],
    "genre": ["comedy", "thriller", "horror", "animated", "romantic", "science fiction", "crime", "adventure"],
    "event": ["the football final", "the tennis match", "the Olympics opening ceremony", "the election debate",
              "the basketball game", "the marathon", "the rugby semi-final", "the rocket launch"],
    "vtopic": ["cooking pasta", "guitar lessons", "home workouts", "space exploration", "car repair", "knitting",
               "yoga for beginners", "woodworking"],
    # navigation
    "place": ["the central station", "the city hospital", "the harbour", "the university campus", "the conference centre",
              "the cathedral", "the shopping mall", "the football stadium", "terminal 2", "the national museum",
              "the main square", "the botanical garden", "the town hall", "Elm Street 14"],
    "origin": ["here", "my current location", "the hotel lobby", "the office", "this corner"],
    "travel_mode": ["on foot", "by car", "by bicycle", "by public transport", "by scooter", "by taxi"],
    "poi": ["supermarket", "hospital", "petrol station", "EV charging station", "coffee shop", "bus stop",
            "parking garage", "police station", "tram stop", "public restroom", "post office", "bakery"],
    "avoid": ["toll roads", "motorways", "the city centre", "road works", "steep hills"],
    "transit": ["bus", "tram", "subway", "train"],
    # AR/VR
    "ar_object": ["a new armchair", "a kitchen table", "a bookshelf", "a car model", "a virtual pet", "a wardrobe",
                  "a floor lamp", "a rug", "a fridge"],
    "vr_exp": ["tour of the pyramids", "flight simulator", "underwater dive", "space station visit",
               "art gallery walk-through", "mountain hike", "escape room", "surgical training simulation",
               "safari experience"],
    "overlay": ["historical information about the landmarks", "the names of the mountains", "product prices",
                "the assembly instructions", "the electrical plan", "restaurant ratings", "the planets"],
    "mr_task": ["maintenance instructions", "a design review", "a chemistry lesson", "a remote assistance session",
                "a furniture assembly guide"],
    "headset": ["Meta headset", "HTC Vive", "Vision Pro", "PlayStation VR", "Pico headset", "VR glasses"],
    # gaming
    "game": ["Apex Legends", "Counter-Strike 2", "Rocket League", "Dota 2", "Overwatch", "Clash Royale", "Fall Guys",
             "Hearthstone", "Elden Ring", "Rainbow Six Siege", "Destiny 2", "Street Fighter 6", "Halo Infinite"],
    "cloud_gaming": ["Amazon Luna", "Boosteroid", "the cloud gaming service", "PlayStation cloud streaming"],
    "gamers": ["my friends", "my brother", "my team", "random players", "my clan", "my colleagues"],
    "region": ["Europe West", "US East", "Asia", "the nearest region"],
    "game_genre": ["racing", "shooter", "strategy", "puzzle", "battle royale", "card", "sports", "fighting"],
    # web/chat
    "fact": ["the population of Canada", "the tallest mountain in Africa", "the speed of light",
             "the meaning of the word serendipity", "the exchange rate between yen and pounds", "the largest desert"],
    "concept": ["photosynthesis", "inflation", "how vaccines work", "the theory of relativity", "machine learning",
                "compound interest", "how tides work"],
    "text_type": ["poem", "thank-you note", "cover letter", "product review", "wedding toast", "short story"],
    "subject": ["the Roman empire", "coffee", "friendship", "the ocean", "the city of Lisbon", "autumn", "volcanoes"],
    "phrase": ["good morning", "how much does this cost", "I am allergic to nuts", "the bill please", "nice to meet you"],
    "language": ["French", "German", "Italian", "Korean", "Portuguese", "Arabic", "Dutch"],
    "dish": ["lasagna", "vegan curry", "banana bread", "paella", "tomato soup", "chocolate cookies"],
    "person": ["Marie Curie", "Nelson Mandela", "Ada Lovelace", "Leonardo da Vinci", "Frida Kahlo"],
    "doc": ["this report", "the meeting notes", "this news story", "the contract", "this paragraph"],
    "city": ["Rome", "Berlin", "Toronto", "Cairo", "Seoul", "Lima"],
    # files
    "files": ["my holiday pictures", "the project archive", "the 4K video recording", "my contacts and messages",
              "the scanned invoices", "the thesis draft", "all my documents", "the music library", "the log files"],
    "storage": ["OneDrive", "Google Photos", "the company file server", "Box", "my NAS", "the shared drive", "Mega"],
    "dl_item": ["the installer", "the firmware image", "the podcast episodes", "the software package",
                "the research paper", "the e-book", "the game client", "the map data"],
    "recipient": ["my manager", "the client", "my friend", "the printing shop", "the lawyer", "the accountant"],
    "device": ["laptop", "tablet", "desktop computer", "external hard drive", "USB stick"],
    "update": ["operating system", "security", "firmware", "navigation data"],
    "server": ["the SFTP server", "the company intranet", "the release page", "the mirror site"],
    # calls
    "contact": PEOPLE,
    "call_app": ["Viber", "Telegram", "WeChat", "Line", "Jitsi", "the dialler"],
    "conf_app": ["Jitsi", "GoToMeeting", "BlueJeans", "a Slack huddle", "Telegram"],
    "group": ["the project team", "the board", "my study group", "the suppliers", "the whole family", "the sales team"],
    "time": TIMES,
}

TEMPLATES: dict[ServiceClass, list[str]] = {
    SC.video_streaming: [
        "I would like to stream {title} on {vplatform}.", "Start playing {title}.",
        "Find {genre} films available on {vplatform}.", "Open {vplatform} and play the latest episode of {series}.",
        "Stream the live broadcast of {event}.", "Recommend a {genre} movie and begin playback.",
        "I want to watch {event} live on my phone.", "Play a video about {vtopic}.",
        "Resume {series} from the episode I left off.", "Show me {genre} videos in high definition.",
        "Put {title} on in full screen.", "Is {series} available to stream on {vplatform}?",
        "Load a video tutorial on {vtopic}.", "Begin watching {title} with subtitles.",
    ],
    SC.navigation: [
        "Give me directions to {place}.", "What is the quickest route from {origin} to {place}?",
        "Navigate to {place} {travel_mode}.", "How long does it take to reach {place} {travel_mode}?",
        "Find the nearest {poi}.", "Plan a route to {place} that avoids {avoid}.",
        "Which {transit} line should I take to reach {place}?", "Start turn-by-turn navigation to {place}.",
        "Where can I find a {poi} close to my location?", "Show the map with a path to {place}.",
        "Is there traffic on the way to {place}?", "Help me find my way to {place} {travel_mode}.",
        "Guide me from {origin} to the closest {poi}.",
    ],
    SC.ar_vr: [
        "Launch the augmented reality view of {ar_object}.", "Start the virtual reality {vr_exp}.",
        "Use augmented reality to place {ar_object} in my room.", "Open the {vr_exp} on my {headset}.",
        "Show an AR overlay of {overlay} on the camera feed.", "I want an immersive 3D {vr_exp}.",
        "Enable mixed reality mode for {mr_task}.", "Display {overlay} as a hologram.",
        "Can I see {ar_object} in augmented reality?", "Begin the 360-degree {vr_exp}.",
        "Put on my {headset} and open the {vr_exp}.", "Project {mr_task} into my field of view.",
    ],
    SC.gaming: [
        "Start a multiplayer session of {game}.", "I want to play {game} online with {gamers}.",
        "Launch {game} through {cloud_gaming}.", "Find a match in {game} for me.",
        "Reduce my latency for {game}.", "Connect me to a {game} server in {region}.",
        "Open the {game_genre} game I played yesterday.", "List {game_genre} titles that support online multiplayer.",
        "Invite {gamers} to a {game} lobby.", "Play a round of {game}.", "Resume my {game} campaign.",
        "Stream {game} from {cloud_gaming} to my phone.",
    ],
    SC.web_chat: [
        "What is {fact}?", "Can you explain {concept}?", "Write a short {text_type} about {subject}.",
        "Translate the phrase '{phrase}' into {language}.", "Give me a recipe for {dish}.",
        "What is the weather forecast for {city} this weekend?", "Tell me about the history of {subject}.",
        "Help me draft a {text_type} for {recipient}.", "Who was {person}?", "Summarise {doc} in three sentences.",
        "Answer a quick question: what is {fact}?", "Give me three fun facts about {subject}.",
    ],
    SC.file_transfer: [
        "Upload {files} to {storage}.", "Download {dl_item} to my phone.",
        "Send {files} to {recipient} as an attachment.", "Back up {files} to {storage}.",
        "Synchronise {files} between my phone and {storage}.", "Transfer {files} to my {device}.",
        "Install the {update} update.", "Share {files} with {recipient} through a link.",
        "The download of {dl_item} is slow, can you speed it up?", "Save a copy of {files} in {storage}.",
        "Fetch {dl_item} from {server}.", "Copy {files} onto my {device}.",
    ],
    SC.voice_video_call: [
        "Place a phone call to {contact}.", "Start a video call with {contact}.",
        "Set up a video conference on {conf_app} with {group}.", "Dial the number of {contact}.",
        "Join the {conf_app} meeting at {time}.", "I need to speak to {contact} on the phone.",
        "Make a voice call to {contact} using {call_app}.", "Connect me with {contact} over video.",
        "Start a conference call with {group}.", "Ring {contact} for me.",
        "Open a video conference for {group} at {time}.", "Call {contact} on speakerphone.",
    ],
}

# Terse, lower-case "chat register" templates: how people type on a phone keyboard. They are used as they are, without
# the polite prefixes and suffixes.
CASUAL_TEMPLATES: dict[ServiceClass, list[str]] = {
    SC.video_streaming: ["watch {title}", "{vplatform} {series} next ep", "need something {genre} to watch",
                         "put {event} on", "vids about {vtopic}", "{title} stream hd", "{series} on {vplatform} pls"],
    SC.navigation: ["{place} how far", "way to {place}", "closest {poi}?", "get me to {place} {travel_mode}",
                    "{transit} to {place}?", "lost, need to reach {place}", "route {origin} to {place}"],
    SC.ar_vr: ["ar {ar_object} in my room", "vr {vr_exp}", "{headset} {vr_exp}", "see {ar_object} in 3d in my room",
               "hologram of {overlay}", "camera overlay {overlay}", "mixed reality {mr_task}"],
    SC.gaming: ["{game} anyone?", "play {game} w {gamers}", "{game} lobby now", "{game_genre} game online",
                "lagging in {game}", "{cloud_gaming} {game}", "gg, queue {game} again"],
    SC.web_chat: ["{fact}?", "explain {concept} quick", "{dish} recipe", "say '{phrase}' in {language}",
                  "who was {person}", "weather {city}", "short {text_type} on {subject}"],
    SC.file_transfer: ["upload {files}", "{files} to {storage}", "dl {dl_item}", "send {files} to {recipient}",
                       "backup {files}", "{update} update now", "{dl_item} download stuck"],
    SC.voice_video_call: ["call {contact}", "video {contact}", "ring {contact} on {call_app}",
                          "{conf_app} w {group} at {time}", "phone {contact}", "get {contact} on the line",
                          "voice chat {contact}"],
}

PREFIXES = ["", "", "", "Please ", "Could you ", "Assistant, ", "Hello, "]
SUFFIXES = ["", "", "", " Thank you.", " Right now.", " As soon as possible."]

_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Sample:
    text: str
    label: str  # a ServiceClass value
    template: str  # "<class>/<index>", for group-wise validation splits


def _fill(template: str, rng: random.Random) -> str:
    return _SLOT.sub(lambda m: rng.choice(SLOTS[m.group(1)]), template)


# Sentences starting with these words are questions or statements: "Please"/"Could you" would not fit in front of them.
_NOT_IMPERATIVE = {"I", "What", "Which", "Where", "How", "Is", "Are", "Who", "Can", "The"}


def _wrap(sentence: str, rng: random.Random) -> str:
    first_word = sentence.split()[0]
    prefixes = [p for p in PREFIXES if first_word not in _NOT_IMPERATIVE or p.strip() in ("", "Assistant,", "Hello,")]
    prefix, suffix = rng.choice(prefixes), rng.choice(SUFFIXES)
    if prefix and first_word != "I":
        sentence = sentence[0].lower() + sentence[1:]  # "Could you start ..." reads better than "Could you Start ..."
    if prefix == "Could you " and not sentence.endswith("?"):
        sentence = sentence.rstrip(".") + "?"
    return f"{prefix}{sentence}{suffix}"


def generate_training_set(per_class: int = 240, seed: int = 7) -> list[Sample]:
    """`per_class` distinct prompts per service class, in a stable order (same seed -> same list).

    Formal templates are indexed first, then casual ones ("<class>/<n>" continues the numbering)."""
    rng = random.Random(seed)
    samples: list[Sample] = []
    for service_class, formal in TEMPLATES.items():
        templates = [(t, True) for t in formal] + [(t, False) for t in CASUAL_TEMPLATES[service_class]]
        seen: set[str] = set()
        # Cycle through templates so every template is used about equally, whatever per_class is.
        for attempt, (t_index, (template, wrap)) in enumerate(itertools.cycle(enumerate(templates))):
            if len(seen) >= per_class or attempt > per_class * 50:
                break
            text = _fill(template, rng)
            text = _wrap(text, rng) if wrap else text
            if text in seen:
                continue
            seen.add(text)
            samples.append(Sample(text, service_class.value, f"{service_class.value}/{t_index}"))
    return samples


if __name__ == "__main__":  # a quick look: python -m netgpt.edge_agent.user_intent.training_data
    for s in generate_training_set(per_class=5):
        print(f"{s.label:18} {s.text}")
