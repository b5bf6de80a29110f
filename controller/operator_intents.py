"""Operator intents -> OpenFlow: validated, applied with barriers, reverted on expiry, every outcome recorded.

Reads OperatorIntent messages (consumer group 'controller-intents' on netgpt:operator_intents). Each is checked against
what the controller knows (switches, links, cells, live MEC nodes) before anything is sent to a switch, so an intent
naming an unknown switch, port, link, cell or node is rejected with a reason and changes nothing. The outcome is an
IntentResult on the audit stream and in the hash netgpt:intent_status.

    avoid_link  params {"link": "a-b"}               link weight -> 1e6 both ways; paths move off it
    rate_limit  selector {"cell": c} or {"dpid": d, "port": p}, params {"rate_mbps": r}
                                                      an OpenFlow 1.3 meter (drop band) on the cell's access ports,
                                                      both directions, in the policy table
    prioritize  selector as rate_limit, params {"dscp": 46}
                                                      marks the class's packets (EF by default) for queueing upstream
    allocate    selector {"cell": c}, params {"node_id": n}
                                                      pins the cell to a live MEC node (the allocation app obeys pins)
"""
import json
import time

import redis
from ryu.base import app_manager
from ryu.lib import hub

from netgpt.controller.base import NetgptApp
from netgpt.controller.ofp_util import add_meter, delete_flows, delete_meter, flow_mod
from netgpt.controller.shortest_path import FORWARD_TABLE, POLICY_TABLE
from netgpt.core import bus
from netgpt.core.messages import IntentResult, MessageError, OperatorIntent

app_manager.require_app("ryu.app.ofctl.service")

GROUP, CONSUMER = "controller-intents", "operator-intents"
POLICY_PRIORITY = 30
INTENT_COOKIE_BASE = 0x4E47_1000_0000
AVOID_WEIGHT = 1e6


class Rejected(ValueError):
    """The intent cannot be applied as given; the text is the reason shown to the operator."""


class OperatorIntents(NetgptApp):
    REDIS_TIMEOUT_S = 5.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.active: dict[str, tuple[OperatorIntent, dict]] = {}  # intent_id -> (intent, what to undo)
        self.next_meter = 1

    def start(self):
        super().start()
        hub.spawn(self._consume)
        hub.spawn(self._expire_loop)

    # --- validation ---------------------------------------------------------------------------------------------------

    def _ports(self, selector: dict) -> list[tuple[int, int]]:
        """The access ports a selector names, checked against the topology."""
        fwd = self.forwarding
        if "cell" in selector:
            raw = self.redis.hget(bus.Keys.CELLS, str(selector["cell"]))
            if raw is None:
                raise Rejected(f"unknown cell {selector['cell']!r}")
            return [tuple(p) for p in json.loads(raw)]
        if "dpid" in selector and "port" in selector:
            try:
                dpid, port = int(selector["dpid"]), int(selector["port"])
            except (TypeError, ValueError):
                raise Rejected("selector dpid and port must be integers") from None
            if dpid not in fwd.datapaths:
                raise Rejected(f"unknown switch {dpid}")
            if port not in fwd.switch_ports.get(dpid, set()):
                raise Rejected(f"switch {dpid} has no port {port}")
            return [(dpid, port)]
        raise Rejected("selector must name a cell, or a dpid and a port")

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

    # --- applying -----------------------------------------------------------------------------------------------------

    def apply(self, intent: OperatorIntent) -> dict:
        """Validate everything first, then change the network; returns what undo() needs."""
        if intent.intent_id in self.active:
            raise Rejected(f"intent {intent.intent_id} is already active")
        action, p = intent.action.value, intent.params
        if action == "avoid_link":
            a, b = self._link(p)
            old = self.forwarding.graph[a][b]["weight"]
            self.forwarding.set_link_weight(a, b, AVOID_WEIGHT)  # both ways; also re-routes
            return {"link": (a, b), "weight": old}
        if action in ("rate_limit", "prioritize"):
            ports = self._ports(intent.selector)
            if action == "rate_limit":
                rate = p.get("rate_mbps")
                if not isinstance(rate, (int, float)) or rate <= 0:
                    raise Rejected("params.rate_mbps must be a positive number")
            return {"flows": self._install_class(intent, ports)}
        if action == "allocate":
            cell, node = intent.selector.get("cell"), p.get("node_id")
            self._ports({"cell": cell})
            if node not in bus.live_agents(self.redis):
                raise Rejected(f"MEC node {node!r} is not alive (no heartbeat)")
            self.redis.hset(bus.Keys.PINS, cell, node)
            return {"pin": cell}
        raise Rejected(f"action {action} is not handled by the controller")

    def _install_class(self, intent: OperatorIntent, ports) -> list:
        """Per access port: uplink (in_port) and downlink (to the hosts behind it), metered or marked."""
        fwd, flows = self.forwarding, []
        cookie = INTENT_COOKIE_BASE + (hash(intent.intent_id) & 0xFFFFFFF)
        by_switch: dict[int, list[int]] = {}
        for dpid, port in ports:
            if dpid not in fwd.datapaths:
                raise Rejected(f"switch {dpid} is not connected")
            by_switch.setdefault(dpid, []).append(port)
        for dpid, switch_ports in by_switch.items():
            dp = fwd.datapaths[dpid]
            parser = dp.ofproto_parser
            meter_id, actions = None, []
            if intent.action.value == "rate_limit":
                meter_id, self.next_meter = self.next_meter, self.next_meter + 1
                dp.send_msg(add_meter(dp, meter_id, int(intent.params["rate_mbps"] * 1000)))
            else:
                actions = [parser.OFPActionSetField(ip_dscp=int(intent.params.get("dscp", 46)))]
            for port in switch_ports:
                macs = [m for m, loc in fwd.hosts.items() if loc == (dpid, port)]
                matches = [parser.OFPMatch(in_port=port, eth_type=0x0800)]
                matches += [parser.OFPMatch(eth_dst=m, eth_type=0x0800) for m in macs]
                for match in matches:
                    dp.send_msg(flow_mod(dp, POLICY_PRIORITY + intent.priority % 100, match, actions, cookie=cookie,
                                         table_id=POLICY_TABLE, goto_table=FORWARD_TABLE, meter_id=meter_id))
            self.barrier(dp)
            flows.append((dpid, cookie, meter_id))
        return flows

    def undo(self, intent_id: str) -> None:
        intent, state = self.active.pop(intent_id)
        fwd = self.forwarding
        if "link" in state:
            a, b = state["link"]
            if fwd.graph.has_edge(a, b) or fwd.graph.has_edge(b, a):  # a link that went away meanwhile has no weight
                fwd.set_link_weight(a, b, state["weight"])
        for dpid, cookie, meter_id in state.get("flows", []):
            dp = fwd.datapaths.get(dpid)
            if dp is None:
                continue
            dp.send_msg(delete_flows(dp, cookie))
            if meter_id:
                dp.send_msg(delete_meter(dp, meter_id))
            self.barrier(dp)
        if "pin" in state:
            self.redis.hdel(bus.Keys.PINS, state["pin"])
        self._record(intent, True, "expired: reverted")

    # --- plumbing -----------------------------------------------------------------------------------------------------

    def _record(self, intent: OperatorIntent, accepted: bool, reason: str) -> None:
        result = IntentResult(source="controller:intents", intent_id=intent.intent_id, accepted=accepted,
                              reason=reason)
        self.logger.info("intent %s (%s): %s", intent.intent_id, intent.action.value, reason)
        try:
            self.redis.hset(bus.Keys.INTENT_STATUS, intent.intent_id, result.model_dump_json())
            bus.publish(self.redis, bus.Streams.AUDIT, result)
        except redis.RedisError as exc:
            self.logger.warning("intent result not recorded: %s", exc)

    def handle(self, intent: OperatorIntent) -> None:
        if self.forwarding is None:
            raise Rejected("the controller is still starting")
        if intent.expires_ts is not None and intent.expires_ts <= time.time():
            raise Rejected("already expired")
        state = self.apply(intent)
        self.active[intent.intent_id] = (intent, state)
        self._record(intent, True, "applied")

    def _consume(self):
        bus.consume_forever(self.redis, GROUP, CONSUMER, [bus.Streams.OPERATOR_INTENTS], self.handle_entry)

    def handle_entry(self, _stream, entry_id, fields):
        try:
            intent = bus.decode_entry(fields)
        except MessageError as exc:
            self.drops.count(exc)
            self.logger.warning("dropped operator intent %s: %s", entry_id, exc)
            return
        if not isinstance(intent, OperatorIntent):
            self.drops.add("unexpected kind")
            return
        try:
            self.handle(intent)
        except Rejected as exc:
            self._record(intent, False, f"rejected: {exc}")

    def _expire_loop(self):
        while True:
            hub.sleep(0.5)
            self.expire(time.time())

    def expire(self, now: float) -> None:
        """Revert every active intent whose time is up."""
        for intent_id, (intent, _) in list(self.active.items()):
            if intent.expires_ts is not None and intent.expires_ts <= now:
                try:
                    self.undo(intent_id)
                except Exception:
                    self.logger.exception("reverting intent %s failed", intent_id)
