"""The intent service: submit (understand, compile, check conflicts, record, send), withdraw, and look up intents.

    record = submit(r, "block traffic from u1 to u3")        # IntentRecord in state compiled, sent to the controller
    withdraw(r, record.intent_id)                             # the controller removes it and records withdrawn

What the operator API (netgpt.intent.api) and `netgpt intent` call; Redis `r` is the only connection to the rest of
NetGPT. Nothing reaches the controller unless every step succeeded: an IntentError at any step (not understood,
ambiguous, an unknown host or switch, a conflict with an installed intent) means nothing was sent. Refused and failed
submissions are kept as `failed` records with their reason, so the audit trail has them too.

A sentence is read as flow-level when it names a switch by number and is not a question (netgpt.intent.flows), else as
high-level (netgpt.intent.parse). Queries are not intents: `submit` refuses them (ask them with netgpt.intent.queries).
"""
from __future__ import annotations

import re
import time

from netgpt.core import bus
from netgpt.core.messages import (
    HighLevelIntent,
    IntentEvent,
    IntentRecord,
    IntentState,
    IntentWithdrawal,
)
from netgpt.intent.compile import (
    NetworkView,
    compile_flows,
    compile_intent,
    conflict_error,
    conflicts,
    is_blocking,
)
from netgpt.intent.errors import IntentError
from netgpt.intent.flow_fields import normalised
from netgpt.intent.flows import FLOW_WORDS, translate_to_flows
from netgpt.intent.parse import understand
from netgpt.intent.rules import is_question
from netgpt.intent.store import IntentStore, new_id
from netgpt.intent.text import checked
from netgpt.intent.typos import corrected

_FLOW_LEVEL = re.compile(r"\b(?:switch(?:es)?|dpids?|openflow:?|node)\s*:?\s*\d")


def level_of(text: str) -> str:
    t, _ = corrected(checked(text), FLOW_WORDS)  # "on swtich 8", "sw 3" are flow-level too
    t = normalised(t)  # and "on switch five"
    return "flow" if _FLOW_LEVEL.search(t) and not is_question(t) else "high"


def submit(r, text: str, level: str = "auto", force: bool = False, lm="default") -> IntentRecord:
    """Understand, compile and send one intent; IntentError (nothing sent) when any step fails."""
    store = IntentStore(r)
    intent_id = new_id()
    guessed, level = level == "auto", level_of(text) if level == "auto" else level
    try:
        flows = None
        if level == "flow":
            try:
                flows = translate_to_flows(text)
            except IntentError as exc:
                # "avoid the link between switch 2 and switch 4" names switches but holds no flow rule: where the level
                # was only guessed, the high-level reader has its turn (and its error, if it finds nothing either)
                if not (guessed and exc.kind == "not_understood"):
                    raise
                level = "high"
        if flows is not None:
            record = IntentRecord(intent_id=intent_id, text=text, level="flow", flows=flows, read_by="rules",
                                  confidence=1.0, source="intent")
        else:
            u = understand(text, lm=lm)
            if u.intent.action.value == "query":
                raise IntentError("invalid", "this is a question, not an intent: ask it instead", field="action",
                                  question="netgpt intent ask \"...\"")
            record = IntentRecord(intent_id=intent_id, text=text, intent=u.intent, read_by=u.by,
                                  confidence=u.confidence, source="intent")
        if record.intent is not None and record.intent.action.value == "allow":
            return _allow(store, record)
        view = NetworkView.from_redis(r)
        if level == "flow":
            compiled = compile_flows(record.flows, view, intent_id, text)
        else:
            compiled = compile_intent(record.intent, view, intent_id, text)
        found = conflicts(compiled.flows, {o.intent_id: [f for c in o.compiled for f in c.flows]
                                           for o in store.active()})
        blocking = [c for c in found if is_blocking(c)]
        if blocking and not force:
            raise conflict_error(blocking)
    except IntentError as exc:
        if exc.kind in ("conflict", "unknown_entity"):  # understood but not applicable: keep the attempt on record
            failed = IntentRecord(intent_id=intent_id, text=text, state=IntentState.failed, source="intent",
                                  history=[IntentEvent(state=IntentState.failed, detail=exc.problem.message)],
                                  measured={"problem": exc.problem.model_dump(mode="json")})
            store.put(failed)
            exc.problem = exc.problem.model_copy(update={"intent_id": intent_id})
        raise
    if found:  # kept with the intent: what the operator should know even when nothing had to be refused
        record = record.model_copy(update={"measured": {"conflicts": [
            {"with": c["with"], "type": c["type"]} for c in found]}})
    store.put(record)
    record = store.transition(intent_id, IntentState.compiled, f"{compiled.action.value}: "
                              f"{len(compiled.flows)} flow entries" if compiled.flows else compiled.action.value,
                              compiled=[compiled], expires_ts=compiled.expires_ts)
    bus.publish(r, bus.Streams.OPERATOR_INTENTS, compiled)
    return record


def _allow(store: IntentStore, record: IntentRecord) -> IntentRecord:
    """'allow X' takes back the active block intents that select X (the same class, scope, source and destination)."""
    want = _selector(record.intent)
    blocks = [o for o in store.active() if o.intent is not None and o.intent.action.value == "block"
              and _selector(o.intent) == want]
    if not blocks:
        raise IntentError("invalid", "no active intent blocks this traffic: nothing to allow", field="action")
    store.put(record)
    for b in blocks:
        withdraw(store.r, b.intent_id, reason=f"allowed again by {record.intent_id}")
    return store.transition(record.intent_id, IntentState.compiled,
                            "withdraws " + ", ".join(b.intent_id for b in blocks))


def _selector(intent: HighLevelIntent) -> tuple:
    scope = tuple(intent.scope) if isinstance(intent.scope, list) else intent.scope
    return intent.traffic_class, scope, intent.src, intent.dst


def withdraw(r, intent_id: str, reason: str = "withdrawn by the operator") -> IntentRecord:
    record = IntentStore(r).get(intent_id)
    if record is None:
        raise IntentError("unknown_entity", f"no intent {intent_id!r}", field="intent_id")
    if record.state in (IntentState.withdrawn, IntentState.failed):
        raise IntentError("invalid", f"intent {intent_id} is already {record.state.value}", field="intent_id")
    bus.publish(r, bus.Streams.OPERATOR_INTENTS, IntentWithdrawal(intent_id=intent_id, reason=reason,
                                                                  source="intent"))
    return record


def wait_for(r, intent_id: str, states: set[IntentState], timeout_s: float = 10.0) -> IntentRecord:
    """Poll the store until the record reaches one of `states` (the controller writes them); the last record seen."""
    store, deadline = IntentStore(r), time.monotonic() + timeout_s
    record = store.get(intent_id)
    while time.monotonic() < deadline:
        record = store.get(intent_id)
        if record is not None and record.state in states:
            return record
        time.sleep(0.1)
    return record
