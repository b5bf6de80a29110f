"""The operator-intent lifecycle as the controller runs it, in plain classes (Faucet's valve.py to the Ryu app's
faucet.py). IntentLifecycle is told what happened (an intent delivered, a withdrawal, the clock, the network view read
again, a switch back) and decides what the network must get; the controller's installer
(netgpt.controller.intent_installer, the `Switches` below) carries that out over OpenFlow, and the Ryu app
(netgpt.controller.operator_intents) only turns Ryu events into these calls. The lifecycle lives in the intent store
(netgpt.intent.store, Redis): records move to installed, verified, failed or withdrawn, and back to compiled while an
intent waits; a controller start re-installs every record that says compiled, installed or verified.

All-or-nothing: every switch must be connected before anything is sent; then each switch gets its meter and entries
and a barrier; an OpenFlow error for any of them, or a barrier without answer, removes everything the intent put on
every switch and the record says failed, with the switch's error. Verification reads the intent's entries back with a
flow-stats request per switch: installed becomes verified when every switch holds every entry; the counters read
(packets, bytes per switch) are kept in the record and refreshed while it is active.

Recompilation (ONOS: recompile on topology change). A traffic intent (block, rate_limit, prioritize) compiled from
words selects traffic where its hosts and cells attach, so its entries depend on where they are. Twice a second the
controller reads the network view the intent compiler reads (NetworkView: hosts where the controller last saw them,
cells, connected switches); when it changed (a host moved to another switch or port, a switch joined or left, a cell's
ports changed), every installed or verified traffic intent is compiled again from its stored high-level intent, and
where its entries differ they are replaced make-before-break (netgpt.intent.recompile.plan_replacement): the new
entries (and a meter on a switch that had none) go in first, a barrier per switch; then the entries no longer wanted
are deleted one by one (strict delete, the intent's cookie), and meters of switches it left. The record gets an
`installed` event "recompiled (<what changed>): ..." with the new compiled entries, and verification runs again. If a
switch refuses or does not answer, what this replacement added is deleted and the previous entries stay, exactly as
before; the record says installed with "recompilation ... not applied", it is not verified again while so, and it is
retried at every verification round and network change. An intent that names what the network no longer has (its host
left: not in the inventory, or its switch is not connected; a cell without access switch) has every entry removed and
waits in state compiled ("waiting: ..."), in force: it is installed again when its hosts are back (a blocked user who
returns is blocked again), and withdrawal and expiry apply to it as to any. Flow-level intents (entries as the operator
wrote them, dpids and ports named), avoid_link (re-avoided when the link comes back) and allocate are not recompiled.

Conflicts, on every path by which an intent's entries reach a switch: delivered on the stream, restored after a
controller start, re-installed on a switch that reconnected, started when its window begins, recompiled (active, or
waiting for its hosts). Each runs the check submit runs (netgpt.intent.compile.conflicts and is_blocking) on the
entries about to be sent, against every other intent in force here (installed, being installed, waiting for its
window; recompile.new_conflicts) and among themselves, before anything is sent. Accepted are the conflicts submit let
through (the pair recorded in either intent's measured["conflicts"]: forced past, or not blocking;
recompile.accepted_conflicts) and, for entries replacing ones that were in place, the conflicts those already had.
Any other blocking conflict: an intent delivered, restored, re-installed or whose window began fails with the
reason ("rejected: correlation with i-...: 1 conflicting entry"), submit's IntentProblem in measured["problem"] and
the conflicts in measured["conflicts"] (with "at": where), nothing of it on a switch; a recompilation is not
applied: nothing is sent, the previous entries stay, the record says installed, "recompilation (...) not applied:
shadowing with i-...", is not verified while so, and is retried every verification round, so it applies once the
other intent is withdrawn or the host moves on (an intent waiting for its hosts stays waiting the same way). Not
`failed` there: failed is final in this store, while ONOS keeps an intent whose recompilation failed and retries it
on the next topology change; staying on the previous entries, retried, is how this store says that, and never
half-applies. First come, first served, as at submit: the controller restores what the store holds in force before
it reads the stream, so an intent put on the stream while it was down is checked against the restored ones.

Restarts. The switches keep their tables while no controller is connected, so after a start what the previous run
installed for an intent (its stored entries) and is not installed now (it failed, waits, or was compiled again
elsewhere; a crash between sending entries and recording installed leaves the record at compiled) is taken off the
switches once the new entries are in (IntentInstaller.clear). A switch that reconnects gets the intent again; if it
refuses, everything of the intent is removed from every switch and the record says failed.
"""
from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from typing import Callable, Protocol

import redis

from netgpt.core import bus
from netgpt.core.messages import IntentRecord, IntentResult, IntentState, OperatorIntent
from netgpt.intent import recompile
from netgpt.intent.compile import NetworkView, conflict_error
from netgpt.intent.errors import IntentError
from netgpt.intent.store import IntentStore, TransitionError

SOURCE = "controller:intents"  # who did it, on the audit stream


class Rejected(ValueError):
    """The intent cannot be applied as given; the text is the reason shown to the operator."""


class Conflicting(Rejected):
    """Entries with a blocking conflict submit did not accept, with another intent in force or among themselves (the
    conflicts() dicts in `found`); `problem` is the IntentProblem submit would have raised for them."""

    def __init__(self, found: list[dict]):
        self.problem = conflict_error(found).problem
        super().__init__(self.problem.message)
        self.found = found


class Switches(Protocol):
    """What the lifecycle needs of the network (netgpt.controller.intent_installer.IntentInstaller)."""

    def ready(self) -> bool:
        """Whether the network can be changed yet."""

    def apply(self, intent: OperatorIntent) -> dict:
        """Install all-or-nothing; returns what undo() needs. Raises Rejected with nothing left behind."""

    def undo(self, state: dict) -> None:
        """Take back everything apply() or replace() did."""

    def replace(self, intent_id: str, state: dict, old: OperatorIntent, fresh: OperatorIntent) -> dict:
        """Make before break from old's entries to fresh's; the new state. Raises Rejected with all as it was."""

    def read(self, state: dict) -> dict[int, tuple[int, int, int]]:
        """dpid -> (entries, packets, bytes) the switch holds of the intent."""

    def clear(self, intent_id: str, old_flows: list[dict], kept: list[dict] = ()) -> None:
        """After a controller start: remove what the previous run left on the switches for the intent (its stored
        entries `old_flows`, everything with its cookie on a switch without `kept` entries), except `kept`."""


class IntentLifecycle:
    def __init__(self, store: IntentStore, switches: Switches, lock=None, log: logging.Logger | None = None):
        self.store, self.switches = store, switches
        self.lock = lock if lock is not None else nullcontext()  # one replacement, withdrawal or re-install at a time
        self.log = log or logging.getLogger(__name__)
        self.active: dict[str, tuple[OperatorIntent, dict]] = {}  # intent_id -> (intent, what to undo)
        self.pending: dict[str, OperatorIntent] = {}  # intents whose time window has not started
        self.installing: dict[str, OperatorIntent] = {}  # being applied (the barriers yield)
        self.waiting: dict[str, OperatorIntent] = {}  # in force, nothing installed: a host or cell it names is absent
        self.stale: dict[str, str] = {}  # its recompilation could not be applied (installed or waiting): why
        self.seen: dict | None = None  # NetworkView.locations() at the last check

    def view(self) -> NetworkView:
        return NetworkView.from_redis(self.store.r, nodes=False)

    # --- installing -----------------------------------------------------------------------------------------------

    def deliver(self, intent: OperatorIntent) -> None:
        """An intent from the stream: installed, or failed with the reason."""
        try:
            self.handle(intent)
        except Rejected as exc:
            self._fail(intent.intent_id, f"rejected: {exc}", exc, "delivery")
            self._record(intent, False, f"rejected: {exc}")

    def handle(self, intent: OperatorIntent, detail: str = "", before: list[dict] = (), now: float | None = None) \
            -> None:
        """Install the intent as compiled against the network now, after the conflict check of submit against every
        other intent in force here (installed, being installed, or waiting for its window): raises Rejected
        (Conflicting for a conflict) with nothing sent. `before`: its entries that were in place and checked (a
        re-install, a waiting intent whose hosts are back): the conflicts they had stay accepted. `now`: the clock's
        time (the wall clock's by default)."""
        if not self.switches.ready():
            raise Rejected("the controller is still starting")
        if intent.intent_id in self.active or intent.intent_id in self.installing:
            return  # delivered twice (a restart re-reads the stream and the store): it is (being) installed already
        record = self.store.get(intent.intent_id)
        if record is None:  # sent without the intent service: keep its lifecycle too
            self.store.put(IntentRecord(intent_id=intent.intent_id, text=intent.text, state=IntentState.compiled,
                                        compiled=[intent], expires_ts=intent.expires_ts, source="controller"))
        elif record.state in (IntentState.withdrawn, IntentState.failed):
            self.log.info("intent %s is %s: not installed", intent.intent_id, record.state.value)
            return
        now = time.time() if now is None else now
        if intent.expires_ts is not None and intent.expires_ts <= now:
            raise Rejected("already expired")
        starts = intent.params.get("starts_ts")
        if starts is not None and starts > now:
            self._check_conflicts(intent.intent_id, intent.flows, before)  # as submit: against what is in force now
            self.pending[intent.intent_id] = intent
            return
        try:  # installed as compiled against the network now (it may have changed since it was compiled)
            fresh = self._recompiled(intent, record)
        except IntentError as exc:
            self._wait(intent, f"waiting: {exc.problem.message}; nothing installed, installed when it is back")
            return
        if not recompile.same(fresh.flows, intent.flows):
            detail = (detail + "; " if detail else "") + "compiled again against the network now: " \
                f"{recompile.entries(fresh.flows)} on switch {recompile.switches(fresh.flows)}, were on switch " \
                f"{recompile.switches(intent.flows)}"
            intent = fresh
        self._check_conflicts(intent.intent_id, intent.flows, before)
        self.waiting.pop(intent.intent_id, None)
        self.installing[intent.intent_id] = intent  # the barriers yield: another delivery must not install it meanwhile
        try:
            state = self.switches.apply(intent)
        finally:
            self.installing.pop(intent.intent_id, None)
        self.active[intent.intent_id] = (intent, state)
        self._transition(intent.intent_id, IntentState.installed, detail or "every switch acknowledged",
                         compiled=[intent])  # what is installed now (recompiled, it may differ from what was sent)
        self._record(intent, True, "applied")
        self._verify_quietly(intent.intent_id)

    def reinstall(self, intent_id: str, why: str) -> None:
        """Install an active intent again (its switch reconnected with empty tables)."""
        with self.lock:
            if intent_id not in self.active:
                return
            intent, state = self.active.pop(intent_id)
            try:
                self.handle(intent, detail=f"re-installed: {why}", before=intent.flows)
            except Rejected as exc:  # what its other switches still hold goes too: nothing half-applied
                self.switches.undo(state)
                self._fail(intent_id, f"not re-installed ({why}): {exc}", exc, "re-install")
                self._record(intent, False, f"not re-installed: {exc}")
                return
            if intent_id not in self.active:  # waiting now (what it names left): its other switches' entries go
                self.switches.undo(state)

    def restore(self, wait_for_switches: Callable[[set[int]], None]) -> None:
        """After a controller start: re-install what the store says is in force, each intent once
        `wait_for_switches(dpids)` has returned (the controller waits, bounded, for them to connect)."""
        try:
            records = self.store.active()
        except redis.RedisError as exc:
            self.log.warning("intents not restored: %s", exc)
            return
        for record in records:
            if not record.compiled:
                continue
            intent = record.compiled[0]
            wait_for_switches({int(e["dpid"]) for e in intent.flows})
            try:
                self.handle(intent, detail="re-installed after a controller start")
            except Rejected as exc:
                self._left_behind(intent)
                self._fail(record.intent_id, f"not restored: {exc}", exc, "restore")
                self._record(intent, False, f"not restored: {exc}")
                continue
            self._left_behind(intent)

    def _left_behind(self, stored: OperatorIntent) -> None:
        """The switches keep their tables while no controller is connected: what the previous run installed for the
        intent (its stored entries) and what is not installed now (it failed, waits, or was compiled again elsewhere)
        is taken off them, after the new entries went in (make before break)."""
        if not stored.flows:
            return
        kept = self.active[stored.intent_id][0].flows if stored.intent_id in self.active else []
        try:
            self.switches.clear(stored.intent_id, stored.flows, kept)
        except Exception as exc:
            self.log.warning("intent %s: what the previous run installed not cleared: %s", stored.intent_id, exc)

    def on_switch(self, dpid: int) -> list[str]:
        """The active intents with entries on this switch."""
        return [i for i, (_, state) in self.active.items() if any(d == dpid for d, _, _ in state.get("flows", []))]

    def on_link(self, a: int, b: int) -> list[str]:
        """The active intents that avoid this link."""
        link = tuple(sorted((a, b)))
        return [i for i, (_, state) in self.active.items() if tuple(sorted(state.get("link", ()))) == link]

    # --- verifying ------------------------------------------------------------------------------------------------

    def verify(self, intent_id: str) -> None:
        """Read the intent's entries back from every switch; installed -> verified when all are there."""
        intent, state = self.active[intent_id]
        if "flows" not in state:  # avoid_link / allocate: the controller's own state is the effect
            self._transition(intent_id, IntentState.verified, "applied in the controller")
            return
        expected = {d: len(es) for d, es in recompile.by_switch(intent.flows).items()}
        held = self.switches.read(state)
        measured = {str(d): {"entries": n, "packets": p, "bytes": b} for d, (n, p, b) in held.items()}
        missing = [f"switch {d} holds {n}/{expected.get(d, 0)} entries" for d, (n, _, _) in held.items()
                   if n < expected.get(d, 0)]
        record = self.store.get(intent_id)
        if record is not None and "conflicts" in record.measured:  # what the operator should know stays with it
            measured["conflicts"] = record.measured["conflicts"]
        if intent_id in self.stale:  # its entries are there, but they are not what the network now needs
            self._update(intent_id, measured=measured)
            return
        if missing:
            if record is not None and record.state == IntentState.verified:
                self._transition(intent_id, IntentState.installed, "; ".join(missing), measured=measured)
            return
        if record is not None and record.state == IntentState.verified:
            self._update(intent_id, measured=measured)
        else:
            self._transition(intent_id, IntentState.verified, "every entry read back from the switches",
                             measured=measured)

    def _verify_quietly(self, intent_id: str) -> None:
        try:
            self.verify(intent_id)
        except Exception as exc:  # verification is read-only: an unanswered stats request leaves it installed
            self.log.warning("verifying intent %s: %s", intent_id, exc)

    # --- withdrawing and the clock --------------------------------------------------------------------------------

    def withdraw(self, intent_id: str, reason: str) -> None:
        with self.lock:
            self.stale.pop(intent_id, None)
            if intent_id in self.pending:
                self.pending.pop(intent_id)
                self._transition(intent_id, IntentState.withdrawn, reason)
            elif intent_id in self.active:
                self.undo(intent_id, reason)
            else:
                waited = self.waiting.pop(intent_id, None) is not None
                if not waited:  # not installed by this run: what a previous one left (a crash mid-withdrawal) goes
                    self._clear_stored(intent_id)
                self._transition(intent_id, IntentState.withdrawn, reason + " (nothing was installed" +
                                 (": it was waiting for its hosts)" if waited else ")"))

    def _clear_stored(self, intent_id: str) -> None:
        try:
            record = self.store.get(intent_id)
        except redis.RedisError:
            return
        if record is not None and record.compiled and record.state != IntentState.withdrawn and \
                self.switches.ready():
            self._left_behind(record.compiled[0])

    def undo(self, intent_id: str, reason: str) -> None:
        intent, state = self.active.pop(intent_id)
        self.switches.undo(state)
        self._transition(intent_id, IntentState.withdrawn, reason)
        self._record(intent, True, reason)

    def tick(self, now: float, verify: bool) -> None:
        """What the controller's clock does twice a second: expiry, the network view, and (`verify`) a verification
        round, which also retries recompilations not applied."""
        self.expire(now)
        try:
            self.recheck(retry=verify)
        except Exception:  # a Redis outage or a bug must not stop expiry and verification
            self.log.exception("recompiling intents failed")
        if verify:
            for intent_id in list(self.active):
                self._verify_quietly(intent_id)

    def expire(self, now: float) -> None:
        """Start intents whose window has begun; withdraw every active intent whose time is up."""
        for intent_id, intent in list(self.pending.items()):
            if intent.params.get("starts_ts", 0) <= now:
                self.pending.pop(intent_id)
                try:
                    self.handle(intent, detail="its time window began", now=now)
                except Rejected as exc:
                    self._fail(intent_id, f"rejected: {exc}", exc, "window start")
                    self._record(intent, False, f"rejected: {exc}")
        for intent_id, (intent, _) in list(self.active.items()):
            if intent.expires_ts is not None and intent.expires_ts <= now:
                try:
                    with self.lock:
                        self.stale.pop(intent_id, None)
                        self.undo(intent_id, "expired: reverted")
                except Exception:
                    self.log.exception("reverting intent %s failed", intent_id)
        for intent_id, intent in list(self.waiting.items()):
            if intent.expires_ts is not None and intent.expires_ts <= now:
                self.waiting.pop(intent_id)
                self.stale.pop(intent_id, None)
                self._transition(intent_id, IntentState.withdrawn, "expired while waiting (nothing was installed)")

    # --- recompiling ----------------------------------------------------------------------------------------------

    def _recompiled(self, intent: OperatorIntent, record: IntentRecord | None,
                    view: NetworkView | None = None) -> OperatorIntent:
        if not recompile.follows(intent, record):
            return intent
        return recompile.recompiled(intent, record, view if view is not None else self.view())

    def recheck(self, view: NetworkView | None = None, retry: bool = False) -> None:
        """When the network view changed since the last look (or `retry`, for recompilations not applied), compile
        every active and waiting traffic intent again and apply what changed."""
        view = view if view is not None else self.view()
        seen = view.locations()
        changed = seen != self.seen
        if not changed and not (retry and self.stale):
            return
        why = recompile.changes(self.seen, seen, view) if changed else []
        self.seen = seen
        for intent_id in list(self.active) + list(self.waiting):
            if changed or intent_id in self.stale:
                with self.lock:
                    self._recompile(intent_id, view, why or ([self.stale[intent_id]] if intent_id in self.stale
                                                             else []))

    def _recompile(self, intent_id: str, view: NetworkView, changes: list[str]) -> None:
        record = self.store.get(intent_id)
        if record is None or record.state not in (IntentState.compiled, IntentState.installed,
                                                  IntentState.verified):
            return
        why = recompile.concerning(record, changes)
        if intent_id in self.waiting:
            self._recompile_waiting(intent_id, record, view, why)
            return
        if intent_id not in self.active:
            return
        intent, state = self.active[intent_id]
        try:
            fresh = self._recompiled(intent, record, view)
        except IntentError as exc:  # what it names left the network: no stale entries, it waits for it
            self.active.pop(intent_id)
            self.stale.pop(intent_id, None)
            self.switches.undo(state)
            self._wait(intent, f"waiting: {exc.problem.message} ({why}); its {recompile.entries(intent.flows)} "
                       "removed; installed again when it is back")
            self._record(intent, True, f"removed while waiting: {exc.problem.message}")
            return
        if recompile.same(fresh.flows, intent.flows) and intent_id not in self.stale:
            return
        try:
            self._check_conflicts(intent_id, fresh.flows, before=intent.flows)
            new_state = self.switches.replace(intent_id, state, intent, fresh)
        except Rejected as exc:
            detail = f"recompilation ({why}) not applied: {exc}; the previous entries stay in place, retried"
            if not record.history or record.history[-1].detail != detail:
                self._transition(intent_id, IntentState.installed, detail, **_conflicts_kept(record, exc))
            self.stale[intent_id] = why
            return
        self.stale.pop(intent_id, None)
        self.active[intent_id] = (fresh, new_state)
        self._transition(intent_id, IntentState.installed, f"recompiled ({why}): {recompile.entries(fresh.flows)} "
                         f"on switch {recompile.switches(fresh.flows)}, were on switch "
                         f"{recompile.switches(intent.flows)}", compiled=[fresh], **_refusal_cleared(record))
        self._record(fresh, True, f"recompiled: {why}")
        self._verify_quietly(intent_id)

    def _recompile_waiting(self, intent_id: str, record: IntentRecord, view: NetworkView, why: str) -> None:
        intent = self.waiting[intent_id]
        try:
            fresh = self._recompiled(intent, record, view)
        except IntentError:
            return  # still absent
        self.stale.pop(intent_id, None)
        try:
            self.handle(fresh, detail=f"recompiled ({why}): {recompile.entries(fresh.flows)} on switch "
                        f"{recompile.switches(fresh.flows)}, installed again", before=intent.flows)
        except Rejected as exc:
            self.waiting[intent_id] = intent
            self.stale[intent_id] = why
            self._wait(intent, f"waiting: not installed ({exc}); retried", **_conflicts_kept(record, exc))

    def _check_conflicts(self, intent_id: str, fresh: list[dict], before: list[dict] = ()) -> None:
        """The check every path to the switches runs (delivery, restore, re-install, a window begun, recompilation):
        raise Conflicting when `fresh` has a blocking conflict with an intent in force here or among themselves that
        submit did not accept (forced past, recompile.accepted_conflicts) and `before` (entries of it that were in
        place) did not already have."""
        records = self.store.active()
        own = self.store.get(intent_id)
        if own is not None and all(r.intent_id != intent_id for r in records):
            records.append(own)
        found = recompile.new_conflicts(list(before), fresh, self._in_force(intent_id),
                                        recompile.accepted_conflicts(intent_id, records))
        if found:
            raise Conflicting(found)

    def _in_force(self, intent_id: str) -> dict[str, list[dict]]:
        """The entries of every other intent this controller holds in force: installed, being installed, or waiting
        for its window to begin (what submit checks against; an intent waiting for its hosts has none). Records the
        controller has not taken yet (still on the stream, not yet restored) are checked against this one when
        they come: first come, first served, as at submit."""
        held = {i: intent.flows for i, (intent, _) in self.active.items()}
        held.update({i: intent.flows for i, intent in self.installing.items()})
        held.update({i: intent.flows for i, intent in self.pending.items()})
        held.pop(intent_id, None)
        return {i: flows for i, flows in held.items() if flows}

    def _wait(self, intent: OperatorIntent, detail: str, **updates) -> None:
        """Keep the intent in force with nothing installed (state compiled, its compiled entries empty)."""
        self.waiting[intent.intent_id] = intent
        record = self.store.get(intent.intent_id)
        if record is not None and record.history and record.history[-1].detail == detail:
            return
        self._transition(intent.intent_id, IntentState.compiled, detail,
                         compiled=[intent.model_copy(update={"flows": []})], **updates)

    # --- the record -----------------------------------------------------------------------------------------------

    def _fail(self, intent_id: str, detail: str, exc: Rejected, at: str) -> None:
        """The record says failed, with the reason; refused for a conflict, with it in measured["conflicts"] and the
        IntentProblem submit would have raised in measured["problem"]."""
        updates = {}
        if isinstance(exc, Conflicting):
            try:
                record = self.store.get(intent_id)
            except redis.RedisError:
                record = None
            if record is not None:
                kept = _conflicts_kept(record, exc, at)["measured"]
                updates = {"measured": {**kept, "problem": exc.problem.model_copy(
                    update={"intent_id": intent_id}).model_dump(mode="json")}}
        self._transition(intent_id, IntentState.failed, detail, **updates)

    def _transition(self, intent_id: str, state: IntentState, detail: str, **updates) -> None:
        try:
            self.store.transition(intent_id, state, detail, **updates)
        except TransitionError as exc:
            self.log.info("intent %s: %s", intent_id, exc)
        except redis.RedisError as exc:
            self.log.warning("intent %s state not recorded: %s", intent_id, exc)

    def _update(self, intent_id: str, **updates) -> None:
        try:
            self.store.update(intent_id, **updates)
        except (TransitionError, redis.RedisError) as exc:
            self.log.info("intent %s: %s", intent_id, exc)

    def _record(self, intent: OperatorIntent, accepted: bool, reason: str) -> None:
        """The outcome on the audit stream (the intent's state itself is in the store)."""
        result = IntentResult(source=SOURCE, intent_id=intent.intent_id, accepted=accepted, reason=reason)
        self.log.info("intent %s (%s): %s", intent.intent_id, intent.action.value, reason)
        try:
            bus.publish(self.store.r, bus.Streams.AUDIT, result)
        except redis.RedisError as exc:
            self.log.warning("intent result not recorded: %s", exc)


def _conflicts_kept(record: IntentRecord, exc: Rejected, at: str = "recompilation") -> dict:
    """The record update that keeps a refusal's conflicts in measured["conflicts"], marked with where it was refused
    (none otherwise); those submit recorded stay (they are what makes a forced conflict accepted)."""
    if not isinstance(exc, Conflicting):
        return {}
    submitted = [c for c in record.measured.get("conflicts", []) if "at" not in c]
    found = [{"with": c["with"], "type": c["type"], "at": at} for c in exc.found]
    return {"measured": {**record.measured, "conflicts": submitted + found}}


def _refusal_cleared(record: IntentRecord) -> dict:
    """The record update that drops the conflicts of a refused recompilation once one is applied (those found at
    submit stay)."""
    kept = [c for c in record.measured.get("conflicts", []) if c.get("at") != "recompilation"]
    if kept == record.measured.get("conflicts", []):
        return {}
    measured = {k: v for k, v in record.measured.items() if k != "conflicts"}
    return {"measured": {**measured, "conflicts": kept} if kept else measured}
