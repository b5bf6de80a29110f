"""Operator intents -> the network: installed all-or-nothing, verified by reading the switches back, withdrawn on
command or expiry, re-installed after a controller restart or a switch reconnect, re-applied when an avoided link
comes back.

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
"""
import time

import redis
from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import MAIN_DISPATCHER, set_ev_cls
from ryu.lib import hub
from ryu.topology import event as topo_event

from netgpt.controller.base import NetgptApp
from netgpt.controller.ofp_util import add_meter, delete_flows, delete_meter, flow_mod_from_ofctl
from netgpt.core import bus
from netgpt.core.messages import (
    IntentRecord,
    IntentResult,
    IntentState,
    IntentWithdrawal,
    MessageError,
    OperatorIntent,
)
from netgpt.intent.store import IntentStore, TransitionError, cookie_of

app_manager.require_app("ryu.app.ofctl.service")

GROUP, CONSUMER = "controller-intents", "operator-intents"
AVOID_WEIGHT = 1e6
VERIFY_EVERY_S = 5.0
ERROR_WAIT_S = 0.05  # after a barrier: time for the switch's error messages (if any) to reach our handler


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
        self.installing.add(intent.intent_id)  # the barriers yield: another delivery must not install it meanwhile
        try:
            state = self.install(intent)
        finally:
            self.installing.discard(intent.intent_id)
        self.active[intent.intent_id] = (intent, state)
        self._transition(intent.intent_id, IntentState.installed, detail or "every switch acknowledged")
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
        if intent_id in self.pending:
            self.pending.pop(intent_id)
            self._transition(intent_id, IntentState.withdrawn, reason)
        elif intent_id in self.active:
            self.undo(intent_id, reason)
        else:
            self._transition(intent_id, IntentState.withdrawn, reason + " (nothing was installed)")

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
            while self.forwarding is None or not needed <= set(self.forwarding.datapaths):
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
                    self.undo(intent_id, "expired: reverted")
                except Exception:
                    self.logger.exception("reverting intent %s failed", intent_id)
