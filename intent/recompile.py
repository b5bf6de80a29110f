"""Recompilation (ONOS: recompile on topology change), as plain decisions on ofctl entries: which intents follow the
network, their entries compiled again, what changed in words, and the make-before-break plan that replaces one set of
entries by another. No OpenFlow here: the controller (netgpt.controller.intent_installer) carries the plan out.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from netgpt.core.messages import IntentRecord, OperatorIntent
from netgpt.intent.compile import NetworkView, compile_intent, conflicts, is_blocking

# Traffic intents compiled from words select traffic where their hosts and cells attach, so their entries depend on
# where those are. Flow-level intents (dpids and ports as written), avoid_link and allocate do not follow the network.
RECOMPILED = ("block", "rate_limit", "prioritize")


def follows(intent: OperatorIntent, record: IntentRecord | None) -> bool:
    """Whether the intent's entries follow the network: a traffic intent compiled from words (its record has them)."""
    return record is not None and record.intent is not None and intent.action.value in RECOMPILED


def recompiled(intent: OperatorIntent, record: IntentRecord | None, view: NetworkView) -> OperatorIntent:
    """The intent with its entries compiled again from its stored high-level intent against `view` (times, rate and
    the rest as first compiled); itself when it does not follow the network. Raises IntentError when the network no
    longer has what it names."""
    if not follows(intent, record):
        return intent
    return intent.model_copy(update={"flows": compile_intent(record.intent, view, intent.intent_id,
                                                             intent.text).flows})


def new_conflicts(before: list[dict], fresh: list[dict], others: dict[str, list[dict]],
                  accepted: set[tuple[str, str]] = frozenset()) -> list[dict]:
    """The blocking conflicts (those submit refuses) of the fresh entries, with the other intents' entries or among
    themselves, that were not accepted already: `accepted` (other intent id or "itself", type), those submit let
    through (accepted_conflicts), and those the entries they replace (`before`, in place and checked when they went
    in) already had, so that one an intent was forced past stays accepted wherever the intent moves. `before` is []
    for entries nothing was checked for in this controller yet (delivered, restored, a window begun)."""
    had = set(accepted) | {(c["with"], c["type"]) for c in conflicts(before, others) if is_blocking(c)}
    return [c for c in conflicts(fresh, others) if is_blocking(c) and (c["with"], c["type"]) not in had]


def accepted_conflicts(intent_id: str, records: list[IntentRecord]) -> set[tuple[str, str]]:
    """The conflicts of an intent that submit accepted, as (other id or "itself", type): those its own record lists
    (forced past, or not blocking) and those of intents submitted after it that list it (forced past it). The
    taxonomy's types do not depend on which of the two entries came first, so the pair's type is the same either
    way. Conflicts of a recompilation that was not applied (marked "at") were refused, not accepted."""
    out = set()
    for record in records:
        for c in record.measured.get("conflicts", []):
            if "at" in c:
                continue
            if record.intent_id == intent_id:
                out.add((c["with"], c["type"]))
            elif c["with"] == intent_id:
                out.add((record.intent_id, c["type"]))
    return out


@dataclass(frozen=True)
class Replacement:
    """Make before break, per switch: `add` (what only the new entries have, sent first with a barrier per switch),
    then `delete` (what only the old have, strict deletes). `joined`: switches new to the intent (a rate cap needs a
    meter there first); `left`: switches it no longer has any entry on (their meter goes)."""

    add: dict[int, list[dict]]
    delete: dict[int, list[dict]]
    joined: list[int]
    left: list[int]
    switches: list[int]  # every switch the new entries are on


def plan_replacement(old_flows: list[dict], new_flows: list[dict]) -> Replacement:
    """An old entry the new ones have one with the same table, priority and match of (other actions) is not deleted:
    the new ADD replaced it on the switch, and a strict delete (which selects by those) would delete the new one."""
    old, new = by_switch(old_flows), by_switch(new_flows)
    add = {d: [e for e in es if e not in old.get(d, [])] for d, es in new.items()}
    delete = {d: [e for e in es if _slot(e) not in {_slot(n) for n in new.get(d, [])}] for d, es in old.items()}
    return Replacement(add={d: es for d, es in add.items() if es}, delete={d: es for d, es in delete.items() if es},
                       joined=[d for d in new if d not in old], left=[d for d in old if d not in new],
                       switches=list(new))


def _slot(entry: dict) -> str:
    """What a switch tells entries apart by: table, priority, match."""
    return json.dumps([int(entry.get("table_id", 0)), int(entry.get("priority", 0)), entry.get("match") or {}],
                      sort_keys=True)


def by_switch(flows: list[dict]) -> dict[int, list[dict]]:
    """dpid -> its entries, in the order given."""
    out: dict[int, list[dict]] = {}
    for entry in flows:
        out.setdefault(int(entry["dpid"]), []).append(entry)
    return out


def same(a: list[dict], b: list[dict]) -> bool:
    """The same entries, in any order."""
    key = lambda flows: sorted(json.dumps(e, sort_keys=True) for e in flows)  # noqa: E731
    return key(a) == key(b)


def entries(flows: list[dict]) -> str:
    return f"{len(flows)} entr{'y' if len(flows) == 1 else 'ies'}"


def switches(flows: list[dict]) -> str:
    return ", ".join(map(str, sorted({int(e["dpid"]) for e in flows}))) or "none"


def changes(before: dict | None, after: dict, view: NetworkView) -> list[str]:
    """What changed between two NetworkView.locations(), in words: hosts that moved, left or came back, switches
    that joined or left, cells whose access ports changed."""
    if before is None:
        return []
    names = {d: n for n, d in view.switches.items()}
    at = lambda loc: f"{names.get(loc[0], f's{loc[0]}')} port {loc[1]}" + (f" (cell {loc[2]})" if loc[2] else "")  # noqa: E731
    out = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if key == "switches":
            joined, left = sorted(set(new or ()) - set(old or ())), sorted(set(old or ()) - set(new or ()))
            out += [f"switch {d} joined" for d in joined] + [f"switch {d} left" for d in left]
        elif key.startswith("cell "):
            out.append(f"{key}'s access ports changed" if new else f"{key} left the network")
        elif new is None or new == ("absent",):
            out.append(f"host {key} left the network")
        elif old is None or old == ("absent",):
            out.append(f"host {key} is at {at(new)}")
        else:
            out.append(f"host {key} moved from {at(old)} to {at(new)}")
    return out


def concerning(record: IntentRecord, found: list[str]) -> str:
    """The changes that name the intent's hosts or cells (all of them when none does), joined for its history."""
    names = {n for n in (record.intent.src, record.intent.dst) if n} if record.intent else set()
    if record.intent is not None and isinstance(record.intent.scope, list):
        names |= set(record.intent.scope)
    mine = [c for c in found if names & set(c.replace("(", " ").replace(")", " ").split())]
    return "; ".join(mine or found) or "the network changed"
