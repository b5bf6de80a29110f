"""The intent store: every operator intent and its lifecycle, in Redis (hash netgpt:intents, one IntentRecord each).

Redis is the one place both writers meet: the operator API records submitted/compiled, the controller installed/
verified/failed/withdrawn. A transition is a read-modify-write under WATCH, so two writers never lose each other's
update, and a state may only move forward (a withdrawn intent cannot be re-installed by a late controller event).
The one step back is to compiled, and only from installed or verified: the network changed, the intent was compiled
again and names what is not in the network now (a host that left), so its entries were removed and it waits,
in force, until it can be installed again. failed and withdrawn are final.
The controller re-installs, on start, every intent whose record says compiled, installed or verified: intents survive
a controller restart because they live here, not in the controller's memory.
"""
from __future__ import annotations

import time
import uuid
import zlib

import redis

from netgpt.core.bus import Keys
from netgpt.core.messages import IntentEvent, IntentRecord, IntentState, MessageError, parse_message

# Which state may follow which: forward only; re-verification, re-install after a restart and recompilation stay in
# place; installed/verified -> compiled is an intent waiting for an entity that left the network (see above).
NEXT = {
    IntentState.submitted: {IntentState.compiled, IntentState.failed, IntentState.withdrawn},
    IntentState.compiled: {IntentState.compiled, IntentState.installed, IntentState.failed, IntentState.withdrawn},
    IntentState.installed: {IntentState.installed, IntentState.verified, IntentState.compiled, IntentState.failed,
                            IntentState.withdrawn},
    IntentState.verified: {IntentState.verified, IntentState.installed, IntentState.compiled, IntentState.failed,
                           IntentState.withdrawn},
    IntentState.failed: set(),
    IntentState.withdrawn: set(),
}
ACTIVE = (IntentState.compiled, IntentState.installed, IntentState.verified)
COOKIE_BASE = 0x4E47_0000_0000_0000  # "NG" in the top bytes: every flow of an operator intent carries it


def new_id() -> str:
    return "i-" + uuid.uuid4().hex[:10]


def cookie_of(intent_id: str) -> int:
    """The OpenFlow cookie of an intent's flows: the same in every process and after every restart (CRC-32 of the id,
    not Python's per-process hash())."""
    return COOKIE_BASE | zlib.crc32(intent_id.encode())


class TransitionError(ValueError):
    pass


class IntentStore:
    def __init__(self, r: redis.Redis):
        self.r = r

    def put(self, record: IntentRecord) -> IntentRecord:
        self.r.hset(Keys.INTENTS, record.intent_id, record.model_dump_json())
        return record

    def get(self, intent_id: str) -> IntentRecord | None:
        raw = self.r.hget(Keys.INTENTS, intent_id)
        return _parse(raw) if raw else None

    def all(self) -> list[IntentRecord]:
        records = [_parse(raw) for raw in self.r.hvals(Keys.INTENTS)]
        return sorted((r for r in records if r is not None), key=lambda r: r.ts)

    def active(self) -> list[IntentRecord]:
        return [r for r in self.all() if r.state in ACTIVE]

    def transition(self, intent_id: str, state: IntentState, detail: str = "", **updates) -> IntentRecord:
        """Move a record to `state` (with a history event and any field updates), atomically."""
        return self._change(intent_id, state, detail, updates)

    def update(self, intent_id: str, **updates) -> IntentRecord:
        """Change fields (e.g. the measured counters) without a state change or a history event."""
        return self._change(intent_id, None, "", updates)

    def _change(self, intent_id: str, state: IntentState | None, detail: str, updates: dict) -> IntentRecord:
        with self.r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(Keys.INTENTS)
                    raw = pipe.hget(Keys.INTENTS, intent_id)
                    record = _parse(raw) if raw else None
                    if record is None:
                        raise TransitionError(f"no intent {intent_id!r}")
                    if state is None:
                        new = record.model_copy(update=updates)
                    elif state not in NEXT[record.state]:
                        raise TransitionError(f"intent {intent_id} is {record.state.value}; it cannot become "
                                              f"{state.value}")
                    else:
                        history = list(record.history) + [IntentEvent(state=state, ts=time.time(), detail=detail)]
                        new = record.model_copy(update={"state": state, "history": history, **updates})
                    pipe.multi()
                    pipe.hset(Keys.INTENTS, intent_id, new.model_dump_json())
                    pipe.execute()
                    return new
                except redis.WatchError:
                    continue


def _parse(raw) -> IntentRecord | None:
    try:
        msg = parse_message(raw)
    except MessageError:
        return None
    return msg if isinstance(msg, IntentRecord) else None
