"""What the intent lifecycle (netgpt.intent.lifecycle) decides, carried out on the switches of the forwarding app:

    block / rate_limit / prioritize / flows   the intent's ofctl entries, with the intent's cookie (CRC-32 of its id,
                                              the same after a restart); rate_limit adds one meter per switch
    avoid_link  params {"link": "a-b"}        link weight -> 1e6 both ways; paths move off it
    allocate    selector {"cells": [...]}, params {"node_id": n}   pins the cells to a live MEC node

Every change is all-or-nothing: a barrier per switch, and the switch's OpenFlow errors for the messages just sent
(the Ryu app hands them to error()) undo what this change put anywhere. A plain class: the Ryu app it works for gives
it the forwarding app, Redis, barriers and flow statistics.
"""
from ryu.lib import hub

from netgpt.controller.ofp_util import add_meter, delete_flow_strict, delete_flows, delete_meter, flow_mod_from_ofctl
from netgpt.core import bus
from netgpt.core.messages import OperatorIntent
from netgpt.intent.lifecycle import Rejected
from netgpt.intent.recompile import by_switch, plan_replacement
from netgpt.intent.store import cookie_of

AVOID_WEIGHT = 1e6
ERROR_WAIT_S = 0.05  # after a barrier: time for the switch's error messages (if any) to reach the app's handler
MAX_ERRORS = 1000  # errors for messages nobody waits for (other apps') must not pile up

Flows = list[tuple[int, int, int | None]]  # (dpid, cookie, meter id) per switch an intent has entries on


class IntentInstaller:
    def __init__(self, app):
        self.app = app  # a NetgptApp: .forwarding, .redis, .barrier(dp), .flow_stats(dp, cookie)
        self.meters: dict[int, dict[int, str]] = {}  # dpid -> meter id -> intent id
        self.errors: dict[int, str] = {}  # xid -> the switch's error, for the messages of the change under way

    def ready(self) -> bool:
        return self.app.forwarding is not None

    def error(self, xid: int, text: str) -> None:
        self.errors[xid] = text
        if len(self.errors) > MAX_ERRORS:
            self.errors.pop(next(iter(self.errors)))

    # --- applying and taking back ---------------------------------------------------------------------------------

    def apply(self, intent: OperatorIntent) -> dict:
        """Validate, then change the network; returns what undo() needs. Raises Rejected with nothing left behind."""
        action, p = intent.action.value, intent.params
        fwd = self.app.forwarding
        if action == "avoid_link":
            a, b = self._link(p)
            old = fwd.graph[a][b]["weight"]
            fwd.set_link_weight(a, b, AVOID_WEIGHT)  # both ways; also re-routes
            return {"link": (a, b), "weight": old}
        if action == "allocate":
            cells, node = intent.selector.get("cells", []), p.get("node_id")
            for cell in cells:
                if self.app.redis.hget(bus.Keys.CELLS, str(cell)) is None:
                    raise Rejected(f"unknown cell {cell!r}")
            if node not in bus.live_agents(self.app.redis):
                raise Rejected(f"MEC node {node!r} is not alive (no heartbeat)")
            self.app.redis.hset(bus.Keys.PINS, mapping={c: node for c in cells})
            return {"pins": cells}
        if action in ("block", "rate_limit", "prioritize", "flows"):
            if not intent.flows:
                raise Rejected(f"{action} carries no flow entries")
            return {"flows": self._install_flows(intent)}
        raise Rejected(f"action {action} is not handled by the controller")

    def undo(self, state: dict) -> None:
        fwd = self.app.forwarding
        if "link" in state:
            a, b = state["link"]
            if fwd.graph.has_edge(a, b) or fwd.graph.has_edge(b, a):  # a link that went away meanwhile has no weight
                fwd.set_link_weight(a, b, state["weight"])
        self._remove(state.get("flows", []))
        if "pins" in state:
            self.app.redis.hdel(bus.Keys.PINS, *state["pins"])

    def avoid_again(self, state: dict) -> bool:
        """An avoided link that came back (with the default weight) is avoided again; whether it had to be."""
        a, b = state["link"]
        graph = self.app.forwarding.graph
        if graph.has_edge(a, b) and graph[a][b]["weight"] != AVOID_WEIGHT:
            self.app.forwarding.set_link_weight(a, b, AVOID_WEIGHT)
            return True
        return False

    def _link(self, params: dict) -> tuple[int, int]:
        try:
            a, b = (int(x) for x in str(params["link"]).split("-"))
        except (KeyError, ValueError):
            raise Rejected("params.link must be 'a-b' with switch dpids") from None
        graph = self.app.forwarding.graph
        for dpid in (a, b):
            if dpid not in graph:
                raise Rejected(f"unknown switch {dpid}")
        if not (graph.has_edge(a, b) and graph.has_edge(b, a)):  # avoided both ways
            raise Rejected(f"no link between switches {a} and {b}")
        return a, b

    def _install_flows(self, intent: OperatorIntent) -> Flows:
        """[(dpid, cookie, meter id)] after every switch acknowledged every entry; else rolled back and Rejected."""
        cookie, by = cookie_of(intent.intent_id), by_switch(intent.flows)
        datapaths = self._connected(by)
        done: Flows = []
        for dpid, entries in by.items():
            dp = datapaths[dpid]
            meter_id = self._meter_for(dpid, intent.intent_id) if intent.action.value == "rate_limit" else None
            done.append((dpid, cookie, meter_id))
            xids = []
            try:
                if meter_id:
                    xids.append(self._send_meter(dp, meter_id, int(intent.params["rate_kbps"])))
                for entry in entries:
                    xids.append(self._send(dp, flow_mod_from_ofctl(dp, entry, cookie, meter_id)))
            except (ValueError, KeyError, TypeError) as exc:
                self._remove(done)
                raise Rejected(f"switch {dpid}: entry not valid: {exc}") from None
            refused = self._confirm(dp, xids)
            if refused:
                self._remove(done)
                raise Rejected(f"switch {dpid} {refused}; everything this intent installed was removed")
        return done

    def _connected(self, dpids) -> dict:
        """The forwarding app's datapaths, once every one of `dpids` is connected; else Rejected."""
        datapaths = self.app.forwarding.datapaths
        missing = sorted(d for d in dpids if d not in datapaths)
        if missing:
            raise Rejected(f"switch {', '.join(map(str, missing))} is not connected")
        return datapaths

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

    def _send(self, dp, msg) -> int:
        dp.send_msg(msg)
        return msg.xid

    def _send_meter(self, dp, meter_id: int, rate_kbps: int) -> int:
        dp.send_msg(delete_meter(dp, meter_id))  # a meter left from before a restart has this id too
        return self._send(dp, add_meter(dp, meter_id, rate_kbps))

    def _confirm(self, dp, xids: list[int]) -> str:
        """After a barrier: '' when the switch took every message, else what went wrong."""
        answered = self.app.barrier(dp)
        hub.sleep(ERROR_WAIT_S)
        refused = [self.errors.pop(x) for x in xids if x in self.errors]
        if refused:
            return f"refused: {refused[0]}"
        return "" if answered else "did not answer the barrier"

    def _remove(self, flows: Flows) -> None:
        for dpid, cookie, meter_id in flows:
            dp = self.app.forwarding.datapaths.get(dpid)
            if meter_id:
                self.meters.get(dpid, {}).pop(meter_id, None)
            if dp is None:
                continue
            dp.send_msg(delete_flows(dp, cookie))
            if meter_id:
                dp.send_msg(delete_meter(dp, meter_id))
            self.app.barrier(dp)

    def clear(self, intent_id: str, old_flows: list[dict], kept: list[dict] = ()) -> None:
        """After a controller start: what the previous run left on the switches for this intent (the switches keep
        their tables while no controller is connected), except `kept` (what was just installed in its place). On a
        connected switch without kept entries, every entry with the intent's cookie and the meter it would have had;
        on one with kept entries, the stored entries (`old_flows`) that nothing kept replaced (strict deletes)."""
        cookie, datapaths = cookie_of(intent_id), self.app.forwarding.datapaths
        keep, stale = by_switch(list(kept)), plan_replacement(list(old_flows), list(kept)).delete
        for dpid, dp in list(datapaths.items()):
            if dpid in keep:
                if not stale.get(dpid):
                    continue
                for entry in stale[dpid]:
                    dp.send_msg(delete_flow_strict(dp, entry, cookie))
            else:
                dp.send_msg(delete_flows(dp, cookie))
                meter_id = cookie % 0xFFFF + 1  # the one it had unless two intents collided (_meter_for)
                if meter_id not in self.meters.get(dpid, {}):
                    dp.send_msg(delete_meter(dp, meter_id))
            self.app.barrier(dp)

    # --- replacing (recompilation) --------------------------------------------------------------------------------

    def replace(self, intent_id: str, state: dict, old: OperatorIntent, fresh: OperatorIntent) -> dict:
        """Make before break (netgpt.intent.recompile.plan_replacement): add what the new compilation has and the old
        has not (a meter on a switch new to the intent), a barrier per switch; then delete what only the old has.
        Raises Rejected with everything as it was when a switch refuses or does not answer; returns the new state."""
        cookie, plan = cookie_of(intent_id), plan_replacement(old.flows, fresh.flows)
        datapaths = self._connected(plan.add)
        capped = fresh.action.value == "rate_limit"
        meters = {d: m for d, _, m in state.get("flows", []) if m}
        added: list[tuple[int, dict]] = []
        new_meters: dict[int, int] = {}
        for dpid, entries in plan.add.items():
            dp = datapaths[dpid]
            xids = []
            try:
                if capped and dpid in plan.joined:  # a switch new to the intent: its meter first
                    new_meters[dpid] = self._meter_for(dpid, intent_id)
                    xids.append(self._send_meter(dp, new_meters[dpid], int(fresh.params["rate_kbps"])))
                for entry in entries:
                    xids.append(self._send(dp, flow_mod_from_ofctl(dp, entry, cookie,
                                                                   meters.get(dpid) or new_meters.get(dpid))))
                    added.append((dpid, entry))
            except (ValueError, KeyError, TypeError) as exc:
                self._take_back(added, new_meters, cookie)
                raise Rejected(f"switch {dpid}: entry not valid: {exc}") from None
            refused = self._confirm(dp, xids)
            if refused:
                self._take_back(added, new_meters, cookie)
                raise Rejected(f"switch {dpid} {refused}; the entries it added were removed")
        for dpid in plan.left:
            if dpid in meters:
                self.meters.get(dpid, {}).pop(meters[dpid], None)
        for dpid, gone in plan.delete.items():
            dp = datapaths.get(dpid)
            if dp is None:  # a switch that left took its entries with it
                continue
            for entry in gone:
                dp.send_msg(delete_flow_strict(dp, entry, cookie))
            if dpid in plan.left and dpid in meters:
                dp.send_msg(delete_meter(dp, meters[dpid]))
            self.app.barrier(dp)
        all_meters = {**meters, **new_meters}
        return {"flows": [(d, cookie, all_meters.get(d) if capped else None) for d in plan.switches]}

    def _take_back(self, added: list[tuple[int, dict]], new_meters: dict[int, int], cookie: int) -> None:
        """Undo a replacement's additions: its new entries (strict delete) and the meters it added."""
        datapaths = self.app.forwarding.datapaths
        touched = sorted({d for d, _ in added} | set(new_meters))
        for dpid, entry in added:
            dp = datapaths.get(dpid)
            if dp is not None:
                dp.send_msg(delete_flow_strict(dp, entry, cookie))
        for dpid, meter_id in new_meters.items():
            self.meters.get(dpid, {}).pop(meter_id, None)
            dp = datapaths.get(dpid)
            if dp is not None:
                dp.send_msg(delete_meter(dp, meter_id))
        for dpid in touched:
            dp = datapaths.get(dpid)
            if dp is not None:
                self.app.barrier(dp)

    # --- reading back ---------------------------------------------------------------------------------------------

    def read(self, state: dict) -> dict[int, tuple[int, int, int]]:
        """dpid -> (entries, packets, bytes) the switch holds with the intent's cookie (nothing for one not
        connected)."""
        out = {}
        for dpid, cookie, _ in state.get("flows", []):
            dp = self.app.forwarding.datapaths.get(dpid)
            stats = self.app.flow_stats(dp, cookie) if dp is not None else []
            out[dpid] = (len(stats), sum(s.packet_count for s in stats), sum(s.byte_count for s in stats))
        return out
