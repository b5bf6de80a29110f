"""Typo tolerance for the rule readers: a misspelt or abbreviated keyword is read as the keyword.

    corrected("pls drop all ipv6 on swtich 8, prio 250", FLOW_WORDS)
    -> ("pls drop all ipv6 on switch 8, priority 250", ["swtich->switch", "prio->priority"])

Each reader passes the vocabulary its patterns know (netgpt.intent.flows.FLOW_WORDS, netgpt.intent.rules.RULE_WORDS). A
word is replaced only when all of these hold, so that a correction never changes what the operator meant:
- it has 4 letters or more and stands alone (not glued to digits, dots or colons: addresses, MACs, "ipv4", "h3");
- it is neither a vocabulary word nor a real word that merely looks like one (REAL_WORDS: "mode" is not "node", "slow"
  is not "flow", "server" is not "serve");
- exactly one vocabulary word is 1 edit away (an insertion, deletion, substitution or swap of neighbouring letters;
  2 edits turned "unblocked" into "blocked" and "reverted" into "rejected" in the README's prose); between two words of
  4 letters only a swap counts, since one changed letter in a short word makes another word too often;
- it is not near a name whose typo would change the meaning: protocols ("htpp" is http or https?) and number words are
  never targets, and netgpt.intent.typos.near_protocol finds such words so that the flow reader can ask.
Abbreviations ("prio", "sw 3", "fwd") are a fixed list.
"""
from __future__ import annotations

import functools
import re

ABBREVIATIONS = {"prio": "priority", "pri": "priority", "fwd": "forward", "thru": "through", "pkts": "packets",
                 "pkt": "packet", "ctrl": "controller", "dest": "destination", "alloc": "allocate",
                 "util": "utilization"}  # "alloc" is 1 edit from "allow", "util" from "until"
_SW = re.compile(r"\bsw\.?\s*(?=\d)")  # "sw 3", "sw3": a switch only before its number ("sw" alone is no word here)

PROTOCOLS = ("tcp", "udp", "icmp", "arp", "http", "https", "ssh", "telnet", "dns", "dscp", "ipv4", "ipv6", "ip")

# Real English words within the edit bound of a vocabulary word (of either reader), which must stay as written. Made
# once from the whole-word tokens of the edge LM's tokenizer (SmolLM2, words of 4+ letters) near the vocabulary, with
# word pieces ("prot", "controll", "serv") and names taken out; add to it when a vocabulary grows.
REAL_WORDS = frozenset("""
abode allocated allot alloy alloys alter amps anode arrived assigns aster avid avoids balls bells bending bends black
blacks blink bloc blood blows bother brain browning bulky camps catching center centering centers chant chart chats
cheat clock clocks codes coding commute compete computed computer computes conferences controlled controllers coping
coward cropped cropping crops curing daring dedicated defaults delicate deport deserve destinations dhcp discord
displays drains drawn droppings eater eaters eaves edits eject ejected emits enabled enables ender ending ends entice
ether exist exists falls fame filed files fixed flame flames flaws flock flocks floor flooring floors floss flown food
foods forecasts formal forts framed gamers gases gates gating gazing ghost grain grate guaranteed guarantees halls
hardy hatching heard hermit hither hoard hole hosts hots hour indent inks inline intend intends inter invent jacket
jackets lease leases lending lends lines lists loader lock locked locking locks lows malls marching marks mined minute
mixer mixes modes mother moved moves movie names naming nerve nerves networks noses notes others ours packed parts
pending pocket pockets poets policy polite pores posts pots predicts present preserve prevents priorities prioritized
props rain rated rates receive receiver receives reports reserved reserves resort resource restricts retaining rooted
rooting rotting rouge router routers routine sands scream screaming second seed seeding seeds sells selves sensing
series served server servers shown shows sinks slows sorts sourced sources speeds speedy spend spending spends sport
sports steam steaming stitch stitches stops streak streams subset switched tells tending tends thorough though
throughout tours touted train trough unable unlock users utilise utilize utilizes vice videos voiced voices void walls
watching weave wells whale wheat while wholes whose witch witches yours
""".split()) | {"twitch", "invents", "batching", "allocs", "serv"}  # found in this project's own text

_WORD = re.compile(r"(?<![\w:.])[a-z]+(?![\w:]|\.\w)")


def corrected(t: str, vocabulary: frozenset[str]) -> tuple[str, list[str]]:
    """Normalised text `t` with misspelt and abbreviated keywords replaced, and the replacements ("swtich->switch")."""
    made: list[str] = []

    def fix(m: re.Match) -> str:
        w = m.group(0)
        to = ABBREVIATIONS.get(w) or _nearest(w, vocabulary)
        if to and to != w:
            made.append(f"{w}->{to}")
            return to
        return w

    t = _SW.sub(lambda m: (made.append(f"{m.group(0).strip()}->switch"), "switch ")[1], t)
    return _WORD.sub(fix, t), made


@functools.lru_cache(maxsize=4096)
def _nearest(w: str, vocabulary: frozenset[str]) -> str | None:
    if len(w) < 4 or w in vocabulary or w in REAL_WORDS or w in PROTOCOLS or near_protocol(w):
        return None
    near = [v for v in vocabulary if one_edit(w, v)
            and not (len(w) == len(v) == 4 and sorted(w) != sorted(v))]  # one changed letter: "mode"/"node"
    return near[0] if len(near) == 1 else None


@functools.lru_cache(maxsize=4096)
def near_protocol(w: str, more: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The protocol names (PROTOCOLS and `more`) `w` is a likely typo of ("htpp" -> ("http",)); () when it is one or is
    near none. Three-letter names count only their swaps ("tpc", "upd"): one changed letter in them is a real word too
    often ("are", "top")."""
    names = tuple(dict.fromkeys(PROTOCOLS + more))
    if w in names or w in REAL_WORDS or w in ("rap", "dup", "gbp") or len(w) < 3:
        return ()
    return tuple(p for p in names if len(p) >= 3 and one_edit(w, p) and (len(p) > 3 or sorted(w) == sorted(p)))


def one_edit(a: str, b: str) -> bool:
    """Whether a and b are one edit apart: one letter inserted, deleted, changed, or two neighbours swapped (in one
    pass: the readers ask it of every unknown word against every keyword)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        swapped = i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2:] == b[i + 2:]
        return a[i + 1:] == b[i + 1:] or swapped
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return longer[i + 1:] == shorter[i:]

