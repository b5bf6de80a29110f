"""Operator intents -> the network: installed all-or-nothing, verified by reading the switches back, withdrawn on
command or expiry, re-installed after a controller restart or a switch reconnect, re-applied when an avoided link
comes back, recompiled when the network they were compiled against changes.

Reads OperatorIntent and IntentWithdrawal messages (consumer group 'controller-intents' on netgpt:operator_intents),
which the intent service (netgpt.intent.service) sends after compiling an operator's words against the network
(netgpt.intent.compile): every name is already a dpid, a port or an address, so this app only installs. The lifecycle
lives in the intent store (netgpt.intent.store, Redis): this app moves records to installed, verified, failed or
withdrawn, and on start re-installs every record that says installed or verified.

    block / rate_limit / prioritize / flows   the intent's ofctl entries, with the intent's cookie (CRC-32 of its id,
                                              the same after a restart); rate_limit adds one meter per switch
    avoid_link  params {"link": "a-b"}        link weight -> 1e6 both ways; paths move off it
    allocate    selector {"cells": [...]}, params {"node_id": n}   pins the cells to a live MEC node

All-or-nothing: every switch must be connected before anything is sent; then each switch gets its meter and entries
and a barrier; an OpenFlow error for any of them, or a barrier without answer, removes everything the intent put on
every switch (delete by cookie, meters deleted) and the record says failed, with the switch's error. Verification reads
the intent's entries back with a flow-stats request per switch: installed becomes verified when every switch holds
every entry; the counters read (packets, bytes per switch) are kept in the record and refreshed while it is active.

Recompilation (ONOS: recompile on topology change). A traffic intent (block, rate_limit, prioritize) compiled from
words selects traffic where its hosts and cells attach, so its entries depend on where they are. Twice a second this
app reads the network view the intent compiler reads (netgpt.intent.compile.NetworkView: hosts where the controller
last saw them, cells, connected switches); when it changed (a host moved to another switch or port, a switch joined or
left, a cell's ports changed), every installed or verified traffic intent is compiled again from its stored high-level
intent, and where its entries differ they are replaced make-before-break: the new entries (and a meter on a switch
that had none) go in first, a barrier per switch; then the entries no longer wanted are deleted one by one (strict
delete, the intent's cookie), and meters of switches it left. The record gets an `installed` event "recompiled
(<what changed>): ..." with the new compiled entries, and verification runs again. If a switch refuses or does not
answer, what this replacement added is deleted and the previous entries stay, exactly as before; the record says
installed with "recompilation ... not applied", it is not verified again while so, and it is retried at every
verification round and network change. An intent that names what the network no longer has (its host left: not in
the inventory, or its switch is not connected; a cell without access switch) has every entry removed and waits in
state compiled ("waiting: ..."), in force: it is installed again when its hosts are back (a blocked user who returns
is blocked again), and withdrawal and expiry apply to it as to any. Flow-level intents (entries as the operator wrote
them, dpids and ports named), avoid_link (re-avoided when the link comes back) and allocate are not recompiled.
"""
import json
import time

import redis
from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import MAIN_DISPATCHER, set_ev_cls
from ryu.lib import hub
from ryu.topology import event as topo_event

from netgpt.controller.base import NetgptApp
from netgpt.controller.ofp_util import (
    ALL_COOKIE_BITS,
    add_meter,
    delete_flows,
    delete_meter,
    flow_mod,
    flow_mod_from_ofctl,
)
from netgpt.core import bus
from netgpt.core.messages import (
    IntentRecord,
    IntentResult,
    IntentState,
    IntentWithdrawal,
    MessageError,
    OperatorIntent,
)
from netgpt.intent.compile import NetworkView, compile_intent
from netgpt.intent.errors import IntentError
from netgpt.intent.store import IntentStore, TransitionError, cookie_of

app_manager.require_app("ryu.app.ofctl.service")

GROUP, CONSUMER = "controller-intents", "operator-intents"
AVOID_WEIGHT = 1e6
VERIFY_EVERY_S = 5.0
ERROR_WAIT_S = 0.05  # after a barrier: time for the switch's error messages (if any) to reach our handler
RECOMPILED = ("block", "rate_limit", "prioritize")  # traffic intents: entries where their hosts and cells attach


class Rejected(ValueError):
    """The intent cannot be applied as given; the text is the reason shown to the operator."""


class OperatorIntents(NetgptApp):
    REDIS_TIMEOUT_S = 5.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.active: dict[str, tuple[OperatorIntent, dict]] = {}  # intent_id -> (intent, what to undo)
        self.pending: dict[str, OperatorIntent] = {}  # intents whose time window has not started
        self.installing: set[str] = set()
        self.meters: dict[int, dict[int, str]] = {}  # dpid -> meter id -> intent id
        self.errors: dict[int, str] = {}  # xid -> the switch's error, for the messages of the install under way
        self.waiting: dict[str, OperatorIntent] = {}  # in force, nothing installed: a host or cell it names is absent
        self.stale: dict[str, str] = {}  # installed, but its recompilation could not be applied: why
        self.seen: dict | None = None  # NetworkView.locations() at the last check
        self.lock = hub.Semaphore(1)  # one replacement, withdrawal or re-install at a time
        self.store = IntentStore(self.redis)

    def start(self):
        super().start()
        hub.spawn(self._consume)
        hub.spawn(self._clock_loop)
        hub.spawn(self._restore)

    # --- installing -----------------------------------------------------------------------------------------------

    def install(self, intent: OperatorIntent) -> dict:
        """Validate, then change the network; returns what undo() needs. Raises Rejected with nothing left behind."""
        action, p = intent.action.value, intent.params
        if action == "avoid_link":
            a, b = self._link(p)
            old = self.forwarding.graph[a][b]["weight"]
            self.forwarding.set_link_weight(a, b, AVOID_WEIGHT)  # both ways; also re-routes
            return {"link": (a, b), "weight": old}
        if action == "allocate":
            cells, node = intent.selector.get("cells", []), p.get("node_id")
            for cell in cells:
                if self.redis.hget(bus.Keys.CELLS, str(cell)) is None:
                    raise Rejected(f"unknown cell {cell!r}")
            if node not in bus.live_agents(self.redis):
                raise Rejected(f"MEC node {node!r} is not alive (no heartbeat)")
            self.redis.hset(bus.Keys.PINS, mapping={c: node for c in cells})
            return {"pins": cells}
        if action in ("block", "rate_limit", "prioritize", "flows"):
            if not intent.flows:
                raise Rejected(f"{action} carries no flow entries")
            return {"flows": self._install_flows(intent)}
        raise Rejected(f"action {action} is not handled by the controller")

    def _link(self, params: dict) -> tuple[int, int]:
        try:
            a, b = (int(x) for x in str(params["link"]).split("-"))
        except (KeyError, ValueError):
            raise Rejected("params.link must be 'a-b' with switch dpids") from None
        graph = self.forwarding.graph
        for dpid in (a, b):
            if dpid not in graph:
                raise Rejected(f"unknown switch {dpid}")
        if not (graph.has_edge(a, b) and graph.has_edge(b, a)):  # avoided both ways
            raise Rejected(f"no link between switches {a} and {b}")
        return a, b

    def _install_flows(self, intent: OperatorIntent) -> list[tuple[int, int, int | None]]:
        """[(dpid, cookie, meter id)] after every switch acknowledged every entry; else rolled back and Rejected."""
        cookie, by_switch = cookie_of(intent.intent_id), {}
        for entry in intent.flows:
            by_switch.setdefault(int(entry["dpid"]), []).append(entry)
        missing = sorted(d for d in by_switch if d not in self.forwarding.datapaths)
        if missing:
            raise Rejected(f"switch {', '.join(map(str, missing))} is not connected")
        done: list[tuple[int, int, int | None]] = []
        for dpid, entries in by_switch.items():
            dp = self.forwarding.datapaths[dpid]
            meter_id = self._meter_for(dpid, intent.intent_id) if intent.action.value == "rate_limit" else None
            done.append((dpid, cookie, meter_id))
            xids = []
            try:
                if meter_id:
                    dp.send_msg(delete_meter(dp, meter_id))  # a meter left from before a restart has this id too
                    msg = add_meter(dp, meter_id, int(intent.params["rate_kbps"]))
                    dp.send_msg(msg)
                    xids.append(msg.xid)
                for entry in entries:
                    msg = flow_mod_from_ofctl(dp, entry, cookie, meter_id)
                    dp.send_msg(msg)
                    xids.append(msg.xid)
            except (ValueError, KeyError, TypeError) as exc:
                self._remove(done)
                raise Rejected(f"switch {dpid}: entry not valid: {exc}") from None
            answered = self.barrier(dp)
            hub.sleep(ERROR_WAIT_S)
            refused = [self.errors.pop(x) for x in xids if x in self.errors]
            if refused or not answered:
                self._remove(done)
                raise Rejected(f"switch {dpid} " + (f"refused: {refused[0]}" if refused else "did not answer the "
                                                    "barrier") + "; everything this intent installed was removed")
        return done

    def _meter_for(self, dpid: int, intent_id: str) -> int:
        used = self.meters.setdefault(dpid, {})
        for meter_id, owner in used.items():
            if owner == intent_id:
                return meter_id
        meter_id = cookie_of(intent_id) % 0xFFFF + 1  # stable across restarts unless two intents collide
        while meter_id in used:
            meter_id = meter_id % 0xFFFF + 1
        used[meter_id] = intent_id
        return meter_id

    def _remove(self, flows) -> None:
        for dpid, cookie, meter_id in flows:
            dp = self.forwarding.datapaths.get(dpid)
            if meter_id:
                self.meters.get(dpid, {}).pop(meter_id, None)
            if dp is None:
                continue
            dp.send_msg(delete_flows(dp, cookie))
            if meter_id:
                dp.send_msg(delete_meter(dp, meter_id))
            self.barrier(dp)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def error_msg_handler(self, ev):
        msg = ev.msg
        self.errors[msg.xid] = f"OpenFlow error type {msg.type} code {msg.code}"
        if len(self.errors) > 1000:  # errors for messages nobody waits for (other apps') must not pile up
            self.errors.pop(next(iter(self.errors)))

    @set_ev_cls(ofp_event.EventOFPStateChange, MAIN_DISPATCHER)
    def switch_connected_handler(self, ev):
        """A switch (re)connected with empty tables: give it back every active intent's entries."""
        dpid = ev.datapath.id
        for intent_id, (intent, state) in list(self.active.items()):
            if any(d == dpid for d, _, _ in state.get("flows", [])):
                hub.spawn(self._reinstall, intent_id, f"switch {dpid} reconnected")

    @set_ev_cls(topo_event.EventLinkAdd)
    def link_add_handler(self, ev):
        """A link came (back): an avoid_link intent on it applies again (the forwarding app gives a new link the
        default weight). Later than the forwarding app's own handler of the same event, whose order is not fixed."""
        a, b = ev.link.src.dpid, ev.link.dst.dpid
        for intent_id, (intent, state) in list(self.active.items()):
            if tuple(sorted(state.get("link", ()))) == tuple(sorted((a, b))):
                hub.spawn_after(0.5, self._avoid_again, intent_id)

    def _avoid_again(self, intent_id: str) -> None:
        if intent_id in self.active:
            a, b = self.active[intent_id][1]["link"]
            if self.forwarding.graph.has_edge(a, b) and self.forwarding.graph[a][b]["weight"] != AVOID_WEIGHT:
                self.forwarding.set_link_weight(a, b, AVOID_WEIGHT)
                self.logger.info("intent %s: link %s-%s is back, avoided again", intent_id, a, b)

    def _reinstall(self, intent_id: str, why: str) -> None:
        with self.lock:
            if intent_id not in self.active:
                return
            intent, _ = self.active.pop(intent_id)
            self.handle(intent, detail=f"re-installed: {why}")

    # --- verifying ------------------------------------------------------------------------------------------------

    def verify(self, intent_id: str) -> None:
        """Read the intent's entries back from every switch; installed -> verified when all are there."""
        intent, state = self.active[intent_id]
        if "flows" not in state:  # avoid_link / allocate: the controller's own state is the effect
            self._transition(intent_id, IntentState.verified, "applied in the controller")
            return
        expected: dict[int, int] = {}
        for entry in intent.flows:
            expected[int(entry["dpid"])] = expected.get(int(entry["dpid"]), 0) + 1
        measured, missing = {}, []
        for dpid, cookie, _ in state["flows"]:
            dp = self.forwarding.datapaths.get(dpid)
            stats = self.flow_stats(dp, cookie) if dp is not None else []
            measured[str(dpid)] = {"entries": len(stats), "packets": sum(s.packet_count for s in stats),
                                   "bytes": sum(s.byte_count for s in stats)}
            if len(stats) < expected[dpid]:
                missing.append(f"switch {dpid} holds {len(stats)}/{expected[dpid]} entries")
        record = self.store.get(intent_id)
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

    # --- withdrawing ----------------------------------------------------------------------------------------------

    def undo(self, intent_id: str, reason: str) -> None:
        intent, state = self.active.pop(intent_id)
        fwd = self.forwarding
        if "link" in state:
            a, b = state["link"]
            if fwd.graph.has_edge(a, b) or fwd.graph.has_edge(b, a):  # a link that went away meanwhile has no weight
                fwd.set_link_weight(a, b, state["weight"])
        self._remove(state.get("flows", []))
        if "pins" in state:
            self.redis.hdel(bus.Keys.PINS, *state["pins"])
        self._transition(intent_id, IntentState.withdrawn, reason)
        self._record(intent, True, reason)

    # --- plumbing -------------------------------------------------------------------------------------------------

    def handle(self, intent: OperatorIntent, detail: str = "") -> None:
        if self.forwarding is None:
            raise Rejected("the controller is still starting")
        if intent.intent_id in self.active or intent.intent_id in self.installing:
            return  # delivered twice (a restart re-reads the stream and the store): it is (being) installed already
        record = self.store.get(intent.intent_id)
        if record is None:  # sent without the intent service: keep its lifecycle too
            self.store.put(IntentRecord(intent_id=intent.intent_id, text=intent.text, state=IntentState.compiled,
                                        compiled=[intent], expires_ts=intent.expires_ts, source="controller"))
        elif record.state in (IntentState.withdrawn, IntentState.failed):
            self.logger.info("intent %s is %s: not installed", intent.intent_id, record.state.value)
            return
        if intent.expires_ts is not None and intent.expires_ts <= time.time():
            raise Rejected("already expired")
        starts = intent.params.get("starts_ts")
        if starts is not None and starts > time.time():
            self.pending[intent.intent_id] = intent
            return
        try:  # installed as compiled against the network now (it may have changed since it was compiled)
            fresh = self.recompiled(intent, record)
        except IntentError as exc:
            self._wait(intent, f"waiting: {exc.problem.message}; nothing installed, installed when it is back")
            return
        if not _same(fresh.flows, intent.flows):
            detail = (detail + "; " if detail else "") + f"compiled again against the network now: " \
                f"{_entries(fresh.flows)} on switch {_switches(fresh.flows)}, were on switch {_switches(intent.flows)}"
            intent = fresh
        self.waiting.pop(intent.intent_id, None)
        self.installing.add(intent.intent_id)  # the barriers yield: another delivery must not install it meanwhile
        try:
            state = self.install(intent)
        finally:
            self.installing.discard(intent.intent_id)
        self.active[intent.intent_id] = (intent, state)
        self._transition(intent.intent_id, IntentState.installed, detail or "every switch acknowledged",
                         compiled=[intent])  # what is installed now (recompiled, it may differ from what was sent)
        self._record(intent, True, "applied")
        try:
            self.verify(intent.intent_id)
        except Exception as exc:  # verification is read-only: an unanswered stats request leaves it installed
            self.logger.warning("verifying intent %s: %s", intent.intent_id, exc)

    def handle_entry(self, _stream, entry_id, fields):
        try:
            msg = bus.decode_entry(fields)
        except MessageError as exc:
            self.drops.count(exc)
            self.logger.warning("dropped operator intent %s: %s", entry_id, exc)
            return
        if isinstance(msg, IntentWithdrawal):
            self.withdraw(msg.intent_id, msg.reason)
            return
        if not isinstance(msg, OperatorIntent):
            self.drops.add("unexpected kind")
            return
        try:
            self.handle(msg)
        except Rejected as exc:
            self._transition(msg.intent_id, IntentState.failed, f"rejected: {exc}")
            self._record(msg, False, f"rejected: {exc}")

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
                self._transition(intent_id, IntentState.withdrawn, reason + " (nothing was installed" +
                                 (": it was waiting for its hosts)" if waited else ")"))

    def _transition(self, intent_id: str, state: IntentState, detail: str, **updates) -> None:
        try:
            self.store.transition(intent_id, state, detail, **updates)
        except TransitionError as exc:
            self.logger.info("intent %s: %s", intent_id, exc)
        except redis.RedisError as exc:
            self.logger.warning("intent %s state not recorded: %s", intent_id, exc)

    def _update(self, intent_id: str, **updates) -> None:
        try:
            self.store.update(intent_id, **updates)
        except (TransitionError, redis.RedisError) as exc:
            self.logger.info("intent %s: %s", intent_id, exc)

    def _record(self, intent: OperatorIntent, accepted: bool, reason: str) -> None:
        """The outcome on the audit stream (the intent's state itself is in the store)."""
        result = IntentResult(source="controller:intents", intent_id=intent.intent_id, accepted=accepted,
                              reason=reason)
        self.logger.info("intent %s (%s): %s", intent.intent_id, intent.action.value, reason)
        try:
            bus.publish(self.redis, bus.Streams.AUDIT, result)
        except redis.RedisError as exc:
            self.logger.warning("intent result not recorded: %s", exc)

    def _consume(self):
        bus.consume_forever(self.redis, GROUP, CONSUMER, [bus.Streams.OPERATOR_INTENTS], self.handle_entry)

    def _restore(self):
        """After a controller start: once the switches are back, re-install what the store says is in force."""
        deadline = time.monotonic() + 30
        try:
            records = self.store.active()
        except redis.RedisError as exc:
            self.logger.warning("intents not restored: %s", exc)
            return
        for record in records:
            if not record.compiled:
                continue
            intent = record.compiled[0]
            needed = {int(e["dpid"]) for e in intent.flows}
            # connected and discovered (in the topology the intent is compiled again against)
            while self.forwarding is None or not needed <= set(self.forwarding.datapaths) & set(self.forwarding.graph):
                if time.monotonic() > deadline:
                    break
                hub.sleep(0.5)
            try:
                self.handle(intent, detail="re-installed after a controller start")
            except Rejected as exc:
                self._transition(record.intent_id, IntentState.failed, f"not restored: {exc}")

    def _clock_loop(self):
        last_verify = 0.0
        while True:
            hub.sleep(0.5)
            now = time.time()
            self.expire(now)
            try:
                self.recheck(retry=now - last_verify >= VERIFY_EVERY_S)
            except Exception:  # a Redis outage or a bug must not stop expiry and verification
                self.logger.exception("recompiling intents failed")
            if now - last_verify >= VERIFY_EVERY_S:
                last_verify = now
                for intent_id in list(self.active):
                    try:
                        self.verify(intent_id)
                    except Exception as exc:
                        self.logger.warning("verifying intent %s: %s", intent_id, exc)

    def expire(self, now: float) -> None:
        """Start intents whose window has begun; withdraw every active intent whose time is up."""
        for intent_id, intent in list(self.pending.items()):
            if intent.params.get("starts_ts", 0) <= now:
                self.pending.pop(intent_id)
                try:
                    self.handle(intent, detail="its time window began")
                except Rejected as exc:
                    self._transition(intent_id, IntentState.failed, f"rejected: {exc}")
        for intent_id, (intent, _) in list(self.active.items()):
            if intent.expires_ts is not None and intent.expires_ts <= now:
                try:
                    with self.lock:
                        self.stale.pop(intent_id, None)
                        self.undo(intent_id, "expired: reverted")
                except Exception:
                    self.logger.exception("reverting intent %s failed", intent_id)
        for intent_id, intent in list(self.waiting.items()):
            if intent.expires_ts is not None and intent.expires_ts <= now:
                self.waiting.pop(intent_id)
                self._transition(intent_id, IntentState.withdrawn, "expired while waiting (nothing was installed)")

    # --- recompiling ----------------------------------------------------------------------------------------------

    def recompiled(self, intent: OperatorIntent, record: IntentRecord | None,
                   view: NetworkView | None = None) -> OperatorIntent:
        """The intent with its entries compiled again from its high-level intent against the network now (times,
        rate and the rest as first compiled); itself when it is not a traffic intent compiled from words. Raises
        IntentError when the network no longer has what it names."""
        if record is None or record.intent is None or intent.action.value not in RECOMPILED:
            return intent
        view = view if view is not None else NetworkView.from_redis(self.redis, nodes=False)
        return intent.model_copy(update={"flows": compile_intent(record.intent, view, intent.intent_id,
                                                                 intent.text).flows})

    def recheck(self, view: NetworkView | None = None, retry: bool = False) -> None:
        """When the network view changed since the last look (or `retry`, for recompilations not applied), compile
        every active and waiting traffic intent again and apply what changed."""
        view = view if view is not None else NetworkView.from_redis(self.redis, nodes=False)
        seen = view.locations()
        changed = seen != self.seen
        if not changed and not (retry and self.stale):
            return
        why = _changes(self.seen, seen, view) if changed else []
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
        names = {n for n in (record.intent.src, record.intent.dst) if n} if record.intent else set()
        if record.intent is not None and isinstance(record.intent.scope, list):
            names |= set(record.intent.scope)
        mine = [c for c in changes if names & set(c.replace("(", " ").replace(")", " ").split())]
        why = "; ".join(mine or changes) or "the network changed"
        if intent_id in self.waiting:
            intent = self.waiting[intent_id]
            try:
                fresh = self.recompiled(intent, record, view)
            except IntentError:
                return  # still absent
            try:
                self.handle(fresh, detail=f"recompiled ({why}): {_entries(fresh.flows)} on switch "
                            f"{_switches(fresh.flows)}, installed again")
            except Rejected as exc:
                self.waiting[intent_id] = intent
                self._wait(intent, f"waiting: not installed ({exc}); retried at the next network change")
            return
        if intent_id not in self.active:
            return
        intent, state = self.active[intent_id]
        try:
            fresh = self.recompiled(intent, record, view)
        except IntentError as exc:  # what it names left the network: no stale entries, it waits for it
            self.active.pop(intent_id)
            self.stale.pop(intent_id, None)
            self._remove(state.get("flows", []))
            self._wait(intent, f"waiting: {exc.problem.message} ({why}); its {_entries(intent.flows)} removed; "
                       "installed again when it is back")
            self._record(intent, True, f"removed while waiting: {exc.problem.message}")
            return
        if _same(fresh.flows, intent.flows) and intent_id not in self.stale:
            return
        try:
            new_state = self._replace(intent_id, fresh)
        except Rejected as exc:
            detail = f"recompilation ({why}) not applied: {exc}; the previous entries stay in place, retried"
            if self.stale.get(intent_id) != why:
                self._transition(intent_id, IntentState.installed, detail)
            self.stale[intent_id] = why
            return
        self.stale.pop(intent_id, None)
        self.active[intent_id] = (fresh, new_state)
        self._transition(intent_id, IntentState.installed, f"recompiled ({why}): {_entries(fresh.flows)} on "
                         f"switch {_switches(fresh.flows)}, were on switch {_switches(intent.flows)}",
                         compiled=[fresh])
        self._record(fresh, True, f"recompiled: {why}")
        try:
            self.verify(intent_id)
        except Exception as exc:
            self.logger.warning("verifying intent %s: %s", intent_id, exc)

    def _wait(self, intent: OperatorIntent, detail: str) -> None:
        """Keep the intent in force with nothing installed (state compiled, its compiled entries empty)."""
        self.waiting[intent.intent_id] = intent
        record = self.store.get(intent.intent_id)
        if record is not None and record.history and record.history[-1].detail == detail:
            return
        self._transition(intent.intent_id, IntentState.compiled, detail,
                         compiled=[intent.model_copy(update={"flows": []})])

    def _replace(self, intent_id: str, fresh: OperatorIntent) -> dict:
        """Make before break: add what the new compilation has and the old has not (a meter on a switch new to the
        intent), a barrier per switch; then delete what only the old has. Raises Rejected with everything as it was
        when a switch refuses or does not answer; returns the new state for undo()."""
        intent, state = self.active[intent_id]
        cookie, old, new = cookie_of(intent_id), _by_switch(intent.flows), _by_switch(fresh.flows)
        add = {d: [e for e in es if e not in old.get(d, [])] for d, es in new.items()}
        add = {d: es for d, es in add.items() if es}
        missing = sorted(d for d in add if d not in self.forwarding.datapaths)
        if missing:
            raise Rejected(f"switch {', '.join(map(str, missing))} is not connected")
        meters = {d: m for d, _, m in state.get("flows", []) if m}
        added: list[tuple[int, dict]] = []
        new_meters: dict[int, int] = {}
        for dpid, entries in add.items():
            dp = self.forwarding.datapaths[dpid]
            xids = []
            try:
                if fresh.action.value == "rate_limit" and dpid not in meters:
                    new_meters[dpid] = self._meter_for(dpid, intent_id)
                    dp.send_msg(delete_meter(dp, new_meters[dpid]))
                    msg = add_meter(dp, new_meters[dpid], int(fresh.params["rate_kbps"]))
                    dp.send_msg(msg)
                    xids.append(msg.xid)
                for entry in entries:
                    msg = flow_mod_from_ofctl(dp, entry, cookie, meters.get(dpid) or new_meters.get(dpid))
                    dp.send_msg(msg)
                    xids.append(msg.xid)
                    added.append((dpid, entry))
            except (ValueError, KeyError, TypeError) as exc:
                self._take_back(added, new_meters, cookie)
                raise Rejected(f"switch {dpid}: entry not valid: {exc}") from None
            answered = self.barrier(dp)
            hub.sleep(ERROR_WAIT_S)
            refused = [self.errors.pop(x) for x in xids if x in self.errors]
            if refused or not answered:
                self._take_back(added, new_meters, cookie)
                raise Rejected(f"switch {dpid} " + (f"refused: {refused[0]}" if refused else "did not answer the "
                                                    "barrier") + "; the entries it added were removed")
        for dpid, entries in old.items():
            gone = [e for e in entries if e not in new.get(dpid, [])]
            dp = self.forwarding.datapaths.get(dpid)
            if dpid not in new and dpid in meters:
                self.meters.get(dpid, {}).pop(meters[dpid], None)
            if not gone or dp is None:  # a switch that left took its entries with it
                continue
            for entry in gone:
                dp.send_msg(_delete_entry(dp, entry, cookie))
            if dpid not in new and dpid in meters:
                dp.send_msg(delete_meter(dp, meters[dpid]))
            self.barrier(dp)
        all_meters = {**meters, **new_meters}
        return {"flows": [(d, cookie, all_meters.get(d) if fresh.action.value == "rate_limit" else None)
                          for d in new]}

    def _take_back(self, added: list[tuple[int, dict]], new_meters: dict[int, int], cookie: int) -> None:
        """Undo a replacement's additions: its new entries (strict delete) and the meters it added."""
        touched = sorted({d for d, _ in added} | set(new_meters))
        for dpid, entry in added:
            dp = self.forwarding.datapaths.get(dpid)
            if dp is not None:
                dp.send_msg(_delete_entry(dp, entry, cookie))
        for dpid, meter_id in new_meters.items():
            self.meters.get(dpid, {}).pop(meter_id, None)
            dp = self.forwarding.datapaths.get(dpid)
            if dp is not None:
                dp.send_msg(delete_meter(dp, meter_id))
        for dpid in touched:
            dp = self.forwarding.datapaths.get(dpid)
            if dp is not None:
                self.barrier(dp)


def _by_switch(flows: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for entry in flows:
        out.setdefault(int(entry["dpid"]), []).append(entry)
    return out


def _same(a: list[dict], b: list[dict]) -> bool:
    key = lambda flows: sorted(json.dumps(e, sort_keys=True) for e in flows)  # noqa: E731
    return key(a) == key(b)


def _entries(flows: list[dict]) -> str:
    return f"{len(flows)} entr{'y' if len(flows) == 1 else 'ies'}"


def _switches(flows: list[dict]) -> str:
    return ", ".join(map(str, sorted({int(e["dpid"]) for e in flows}))) or "none"


def _delete_entry(dp, entry: dict, cookie: int):
    """A strict delete of one of the intent's entries (its table, priority and match, and the intent's cookie)."""
    from ryu.lib import ofctl_v1_3

    msg = flow_mod(dp, int(entry.get("priority", 0)), ofctl_v1_3.to_match(dp, entry.get("match", {})), [],
                   cookie=cookie, command=dp.ofproto.OFPFC_DELETE_STRICT, table_id=int(entry.get("table_id", 0)))
    msg.cookie_mask = ALL_COOKIE_BITS  # only this intent's entry, not another's with the same match
    return msg


def _changes(before: dict | None, after: dict, view: NetworkView) -> list[str]:
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
