"""The LM intent reader: a student cut from SmolLM2-135M and trained on the task (netgpt.models.student), or SmolLM2-135M
with the `operator-intent` LoRA adapter (Settings.intent_reader), writes the slot line of a sentence.

    reader = IntentLM.open(settings)            # None when neither is built (netgpt intent train [--reader lora])
    fields, confidence = reader.read(text)      # HighLevelIntent fields, or IntentError

It is the second reader, for what the rules cannot read with certainty (typos, unusual wording); see
netgpt.intent.parse. Schema safety is parse-and-repair: the LM writes `key=value` slots (netgpt.intent.training_data),
unknown keys are dropped, and the result must validate as HighLevelIntent and pass the same required-field checks as
the rules. Then grounding: every number, cell, switch and name it wrote must be in the sentence, so the LM can
correct a misspelt verb but cannot invent a rate, a cell or a host. Confidence is the geometric mean of its token
probabilities (greedy decoding).

Decoding (llama.cpp backend) writes what the slot grammar leaves no choice about without asking the LM: the line's
start " action=", the "=" after a key, and the rest of a key or of an enum value once its first letters single it out
("rate" -> "rate_limit", " sc" -> " scope="), in the tokens the adapter was trained on; they are evaluated in one batch
with the next token instead of one decode step each. The line ends at the end-of-text token or a newline.
"""
from __future__ import annotations

import math
import re
from difflib import SequenceMatcher
import threading
from pathlib import Path

import numpy as np

from netgpt.core.messages import IntentVerb, QuerySubject, ServiceClass
from netgpt.intent.errors import IntentError
from netgpt.intent.rules import check_required
from netgpt.intent.training_data import SLOT_KEYS, from_slots
from netgpt.models.serving import token_logprob

ADAPTER = "operator-intent"
STUDENT = "operator-intent-student"
PROMPT = "operator: {text}\nintent:"
MAX_TOKENS = 48


def prompt(text: str) -> str:
    return PROMPT.format(text=text)


# The values the slot grammar allows for the enum keys; any other key takes free text (numbers, names, lists).
ENUMS = {"action": [v.value for v in IntentVerb], "class": [v.value for v in ServiceClass],
         "subject": [v.value for v in QuerySubject]}


def forced(line: str) -> str:
    """What must follow `line` (the slot line written so far, e.g. " action=rate") whatever the LM would write next:
    "" when there is a choice. Keys come in SLOT_KEYS order (training_data.to_slots), so only later keys are candidates."""
    if not line:
        return " action="
    head, _, word = line.rpartition(" ")
    if "=" in word:
        key, value = word.split("=", 1)
        options = [v for v in ENUMS.get(key, []) if v.startswith(value)] if value else []
        return options[0][len(value):] if len(options) == 1 else ""
    if not word:
        return ""
    written = [k for k in re.findall(r"(\w+)=", head) if k in SLOT_KEYS]
    order = list(SLOT_KEYS)
    later = order[order.index(written[-1]) + 1:] if written else order
    options = [k for k in later if k.startswith(word)]
    return options[0][len(word):] + "=" if len(options) == 1 else ""


class IntentLM:
    def __init__(self, server, adapter: str = ADAPTER, guided: bool = False):
        """`guided`: decode step by step, writing what the grammar forces (netgpt.intent.lm.forced) without the LM; for
        a server that keeps the prompt's cache between calls of next_logits (llama.cpp), else each step would read the
        whole prompt again."""
        self.server, self.adapter, self.guided = server, adapter, guided

    @classmethod
    def open(cls, settings, log=lambda m: None) -> "IntentLM | None":
        """The reader Settings.intent_reader names, when it is built: the student (a model of its own, no adapter) or
        the base with its LoRA adapter."""
        from netgpt.models import student
        from netgpt.models.backends import open_server

        if not built(settings):
            return None
        guided = settings.serving_backend == "llamacpp"
        if settings.intent_reader == "student":
            server = open_server(str(student_dir(settings)), settings.cache_dir, backend=settings.serving_backend,
                                 build=False, log=log, gguf_type=student.SERVE_AS)
            return cls(server, adapter=None, guided=guided)
        server = open_server(settings.intent_base, settings.cache_dir, backend=settings.serving_backend,
                             adapters={ADAPTER: adapter_dir(settings)}, build=False, log=log)
        return cls(server, guided=guided)

    def read(self, t: str) -> tuple[dict, float]:
        """Fields from normalised text `t`; IntentError(not_understood) when the LM's reading is not grounded."""
        if self.guided:
            text, lps = self.decode(prompt(t))
        else:
            out = self.server.complete(prompt(t), adapter=self.adapter, max_tokens=MAX_TOKENS)
            text, lps = out.text, out.logprobs or []
        fields = from_slots(text.strip().splitlines()[0] if text.strip() else "")
        if "action" not in fields:
            raise IntentError("not_understood", "no intent found in the sentence")
        missing = ungrounded(fields, t)
        if missing:
            raise IntentError("not_understood", f"the sentence was read only in part (not in it: {', '.join(missing)})")
        check_required(fields)
        confidence = math.exp(sum(lps) / len(lps)) if lps else 0.0
        return fields, round(confidence, 3)

    def decode(self, text: str) -> tuple[str, list[float]]:
        """Greedy slot line after prompt `text`, with what the grammar forces written in (see the module's doc); the
        log-probabilities are those of the tokens the LM chose. At most MAX_TOKENS tokens, forced ones included."""
        tok = self.server.tokenizer
        ids = self.server.encode(text, MAX_TOKENS)
        start, new, lps = len(ids), [], []
        while len(new) < MAX_TOKENS:
            line = tok.decode(new, skip_special_tokens=True)
            if "\n" in line:
                break
            rest = forced(line)
            if rest:
                # in the tokens training saw (the whole line tokenized at once), and only where the tokens so far
                # are the same: else the LM would be asked to continue from a split it never saw
                whole = tok(line + rest, add_special_tokens=False)["input_ids"]
                if whole[:len(new)] == new and len(whole) > len(new):
                    new = whole[:MAX_TOKENS]
                    continue
            logits = self.server.next_logits(ids[:start] + new, adapter=self.adapter)
            token = int(np.argmax(logits))
            lps.append(token_logprob(logits, token))
            if token == tok.eos_token_id:
                break
            new.append(token)
        return tok.decode(new, skip_special_tokens=True), lps


def _per_base(name: str, settings) -> str:
    """One folder per base: `name` for the default base, `name`-<base> for others."""
    base = str(settings.intent_base)
    return name if base == "cloud-default" else f"{name}-{Path(base).name}"


def adapter_dir(settings) -> Path:
    return Path(settings.cache_dir) / "adapters" / _per_base(ADAPTER, settings)


def student_dir(settings) -> Path:
    return Path(settings.cache_dir) / "models" / _per_base(STUDENT, settings)


def built(settings) -> bool:
    """Whether the reader Settings.intent_reader names is built: a student needs its card (written last) naming the
    base it was cut from, an adapter its peft config."""
    if settings.intent_reader == "student":
        from netgpt.models import student

        return student.card_of(student_dir(settings)).get("cut_from") == str(settings.intent_base)
    return (adapter_dir(settings) / "adapter_config.json").is_file()


# The words that can stand for an action, a class or a query's subject; the LM's action, class, subject and network
# scope need one of them in the sentence, spelt at most a little differently ("blok" is "block"), or it is reading what
# is not there.
CUES = {
    "rate_limit": "cap limit throttle rate restrict slow police shape",
    "prioritize": "prioritize prioritise priority precedence expedite",
    "block": "block drop stop deny forbid ban prevent disallow cut",
    "allow": "allow permit unblock enable let",
    "avoid_link": "avoid off around bypass drain service maintenance route",
    "reserve_bandwidth": "reserve guarantee aside dedicate",
    "allocate_compute": "serve allocate assign move pin put spin provision",
    "query": "which what how is are will does show list display tell report forecast predict",
    "video_streaming": "video streaming stream youtube netflix",
    "navigation": "navigation maps map",
    "ar_vr": "ar vr xr augmented virtual reality",
    "gaming": "gaming games game",
    "web_chat": "web browsing chat",
    "file_transfer": "file transfer transfers downloads download ftp bulk backup backups",
    "voice_video_call": "call calls voice voip conferencing conference",
    "network": "network everywhere all",
    # a query's subject (netgpt.intent.rules.SUBJECTS' words and their kin): "the weather is lovely today" asks nothing
    "intent_status": "intent intents status state installed verified active",
    "flows": "flow flows rules entries table",
    "compute_load": "load loaded overloaded busy sessions session compute cpu serving",
    "link_utilization_forecast": "will forecast predict predicted expected going utilization utilisation",
    "link_throughput": "throughput traffic bandwidth carrying crossing utilization utilisation usage used full data",
}


def _cued(name: str, words: set[str]) -> bool:
    cues = CUES[name].split()
    return any(w in cues or len(w) >= 4 and any(len(c) >= 4 and SequenceMatcher(None, w, c).ratio() >= 0.8
                                                for c in cues) for w in words)


def ungrounded(fields: dict, t: str) -> list[str]:
    """Values the LM wrote that the sentence does not contain."""
    numbers = {float(n) for n in re.findall(r"\d+(?:\.\d+)?", t)}
    words = set(re.findall(r"[a-z]+\d*|\d+", t))
    missing = []
    for name in (fields.get("action"), fields.get("traffic_class"), fields.get("subject"),
                 "network" if fields.get("scope") == "network" else None):
        if name in CUES and not _cued(name, words):
            missing.append(name)
    for name in ("src", "dst", "node"):
        v = fields.get(name)
        if v and v != "cloud" and not _named(v, t, words):
            missing.append(v)
    for v in (fields.get("link") or []) + (fields.get("scope") if isinstance(fields.get("scope"), list) else []):
        if not _named(v, t, words):
            missing.append(v)
    rate = fields.get("rate_mbps")
    if rate is not None and not any(math.isclose(rate, n * k) for n in numbers for k in (1, 1e3, 1e-3, 8, 8e3, 8e-3)):
        missing.append(f"rate {rate}")
    for name in ("duration_min", "horizon_min"):
        v = fields.get(name)
        if v is not None and not any(math.isclose(v, n * k) for n in numbers | {1.0} for k in (1, 60, 1440)):
            missing.append(f"{name} {v}")
    pct = fields.get("threshold_pct")
    if pct is not None and float(pct) not in numbers:
        missing.append(f"{pct}%")
    for end in ((fields.get("window") or {}).values()):
        if end and not ({float(int(end[:2])), float(int(end[:2]) % 12 or 12)} & numbers):
            missing.append(end)
    return missing


_NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                 "twelve"]


def _named(entity: str, t: str, words: set[str]) -> bool:
    """'c5' is named by 'cell 5' / 'cell five' / 'c5'; 'h3' by 'h3' / 'host 3'; 's2' by 's2' / 'switch 2'."""
    if entity in words:
        return True
    m = re.fullmatch(r"([a-z]+)(\d+)", entity)
    if not m:
        return False
    prefix, n = m.groups()
    spoken = {"c": r"cells?", "h": r"host", "u": r"user", "s": r"switch(?:es)?", "mec": r"mec(?: node)?",
              "edge": r"edge(?: node)?"}.get(prefix, prefix)
    n_word = _NUMBER_WORDS[int(n)] if int(n) < len(_NUMBER_WORDS) else n
    return bool(re.search(rf"\b{spoken}[ -]?(?:[\d\s,and&]*\b)?(?:{n}|{n_word})\b", t))


_lock = threading.Lock()
_default: dict = {}


def default_reader() -> "IntentLM | None":
    """The process's reader, opened on first use (None when off by settings or not built)."""
    from netgpt.core.settings import get_settings

    settings = get_settings()
    if not settings.intent_lm:
        return None
    with _lock:
        if "reader" not in _default:
            try:
                _default["reader"] = IntentLM.open(settings)
            except Exception as exc:  # a missing or broken model leaves the rules alone, and says why once
                import logging

                logging.getLogger(__name__).warning("LM intent reader unavailable: %s", exc)
                _default["reader"] = None
        return _default["reader"]
