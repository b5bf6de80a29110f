"""A switch per clause, for netgpt.intent.flows: which part of a flow sentence belongs to which switch.

    clauses("on switch 3, flood arp; on switch 4, send arp to the controller")
    -> ["on switch 3, flood arp", "on switch 4, send arp to the controller"]

A sentence that names its switches in one place ("on switches 1 and 2", "on switch 1 and on switch 2") applies every
rule to every switch: `clauses` returns [] for it. One that names a switch per clause gives each clause to its own
switch, whether the switch opens the clause ("on switch 2 send X out port 1, and on switch 3 send it out port 6") or
closes it ("send X out port 2 on switch 1 and out port 3 on switch 2"). Where the words do not say which output belongs
to which switch ("on switch 2, send X out port 2 on switch 1 and out port 3 on switch 2"), it asks: putting every output
on every switch named would install rules nobody asked for.
"""
from __future__ import annotations

import re

from netgpt.intent.errors import ambiguous

SWITCHES = re.compile(r"\b(?:(?:in|on|at|for)\s+)?(?:the\s+)?(?:switch(?:es)?|nodes?|openflow|dpids?)\s*:?\s*"
                      r"(\d+(?:\s*(?:,\s*(?:and\s+)?|\band\s+|&\s*)\d+)*)")
# What joins two mentions of switches into one list: "on switch 1 and on switch 2", "switch 1, switch 2"
_LIST = re.compile(r"\s*(?:,\s*)?(?:(?:and|&|or|plus|as well as)\s+)?(?:also\s+)?")
# What ends a clause: ";", ". ", ",", "and", "then", "but", and their combinations
_SEP = re.compile(r"\s*(?:;|\.(?=\s)|,\s*(?:and then|and also|and|then|but|while|whereas)\b|,|"
                  r"\b(?:and then|and also|and|then|but|while|whereas)\b)\s*")
_EDGE = r"[\s,;:.]*(?:(?:and then|and also|and|then|also|but|while|whereas)\b[\s,]*)?"


def clauses(t: str, sentence_wide: tuple[re.Pattern, ...] = ()) -> list[str]:
    """The clauses of a sentence with a switch each, in order; [] when all its rules go to every switch it names.
    A `sentence_wide` phrase (a priority, a timeout) before the first clause's switch or after the last one's, outside
    every clause ("... out port 1 on switch 7 with priority 400"), is asked: one clause's, or every clause's?"""
    groups = _groups(t)
    if len({dpids for _, _, dpids in groups}) < 2:
        return []
    bare = t  # the roles without the sentence-wide phrases ("... on switch 7 with priority 400" closes its clause)
    for pattern in sentence_wide:
        bare = pattern.sub(lambda m: " " * len(m.group(0)), bare)
    roles = [_role(bare, start, end) for start, end, _ in groups]
    for pattern in sentence_wide:
        for m in pattern.finditer(t):
            if m.start() < groups[0][0] and roles[0] == "prefix" or m.start() >= groups[-1][1] and roles[-1] == "suffix":
                raise ambiguous(f"'{m.group(0).strip()}' stands outside the clauses of the switches",
                                "Does it apply to every switch's rule, or to one (say it in that clause)?",
                                field="priority")
    cuts = [0]
    for (a, b), (ra, rb) in zip(zip(groups, groups[1:]), zip(roles, roles[1:])):
        gap = t[a[1]:b[0]]
        if rb == "prefix" and ra == "suffix":
            if re.sub(_SEP.pattern, "", gap).strip(" ,;:."):  # "X on switch 1; Y; on switch 2 Z": whose is Y?
                raise _unclear(t)
            cuts.append(a[1])
        elif rb == "prefix":
            cuts.append(b[0])
        elif ra == "suffix":
            cuts.append(a[1])
        else:  # the one separator between them, not counting the comma after a switch that opens its clause
            skip = re.match(r"\s*[,:]?", gap).end() if ra == "prefix" else 0
            seps = [m for m in _SEP.finditer(gap) if m.start() >= skip]
            if len(seps) != 1:
                raise _unclear(t)
            cuts.append(a[1] + seps[0].start())
    cuts.append(len(t))
    out = []
    for start, end in zip(cuts, cuts[1:]):
        part = re.sub(_EDGE + "$", "", re.sub("^" + _EDGE, "", t[start:end].strip())).strip()
        out.append(re.sub(r"^\s*(?:and|then|also)\b\s*", "", part))
    return out


def _groups(t: str) -> list[tuple[int, int, tuple[int, ...]]]:
    """(start, end, dpids) of each place the sentence names switches; mentions joined by 'and' or ',' are one place."""
    groups: list[list] = []
    for m in SWITCHES.finditer(t):
        dpids = tuple(int(d) for d in re.findall(r"\d+", m.group(1)))
        if groups and _LIST.fullmatch(t[groups[-1][1]:m.start()]):
            groups[-1][1] = m.end()
            groups[-1][2] = groups[-1][2] + dpids
        else:
            groups.append([m.start(), m.end(), dpids])
    return [(s, e, tuple(sorted(set(d)))) for s, e, d in groups]


def _role(t: str, start: int, end: int) -> str:
    """prefix (the switch opens its clause), suffix (it closes it) or infix (inside it)."""
    before, after = t[:start].rstrip(), t[end:]
    starts = not before or bool(re.search(r"(?:[;,:.]|\b(?:and|then|also|but|while|whereas))$", before))
    ends = not after.strip(" .!") or bool(re.match(r"\s*(?:[;,:.]|\b(?:and|then|but|while|whereas)\b)", after))
    if starts and ends:
        if not before:
            return "prefix"
        if not after.strip(" .!"):
            return "suffix"
        return "prefix" if re.match(r"\s*[,:]\s*(?!and\b|then\b)", after) else "suffix"
    return "prefix" if starts else "suffix" if ends else "infix"


def _unclear(t: str):
    return ambiguous("the sentence names several switches, and its words do not say which output or rule goes to "
                     "which switch", "Please give one clause per switch, e.g. 'on switch 1, send X out port 2; on "
                     "switch 2, send it out port 3'.", field="dpid")
