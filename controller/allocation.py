"""Compute allocation: which MEC node serves which cell, behind one virtual IP for the edge LLM service.

Users always talk to Settings.edge_vip. For each user host of a cell, the user's access switch rewrites the VIP to the
cell's MEC node on the way in, and the node's address back to the VIP on the way out; the switches between carry the
rewritten packets as an ordinary (user, node) pair of the forwarding app. So moving a cell is one flow change at the
access switch per user, made before the old one is removed.

Choice of node, every Settings.allocation_interval_s:
- a node is alive while its heartbeat key lives in Redis (agents refresh it; it expires after a few missed beats);
- an operator's pin (netgpt:pins, set by an `allocate` intent) wins while the pinned node is alive;
- before a node is overloaded: when the predicted demand of the cells it serves (below) exceeds its capacity, its
  busiest cell moves to the node with the most room for it, one cell per node and tick; a node whose reported load is
  at its capacity hands over its busiest cell the same way; after a hand-over the node keeps its other cells for
  SHED_HOLD_S unless their predicted demand alone overloads it (its reported load lags: it still counts the moved
  cell's recent requests);
- a cell stays where it is while that node is alive and not overloaded (load below capacity), except that it
  returns to its home node once that node has been alive for FAILBACK_AFTER_S and has room for its predicted demand
  (fail-back; a cell that predicted demand or an overload moved away waits SHED_HOLD_S and needs room for the peak
  of its predicted demand over that time plus FAILBACK_MARGIN of the node's capacity);
- otherwise it goes to its home node (a node that lists the cell) if that one has headroom, else to the alive node with
  the most headroom: capacity - reported load - the predicted demand of cells already given to it, where a cell's
  predicted demand is its rate of user intents over the last minute (requests it is about to send), or, if higher,
  the peak of its latest unexpired demand forecast (target 'cell:<cell>:requests_rps') at the upper quantile
  Settings.forecast_act_quantile (the point values for a forecast without quantiles).
Allocations live in Redis (netgpt:allocations), so a restarted controller restores them and re-installs the same flows
(an OpenFlow ADD with the same match replaces the flow: no duplicates). Every change is audited.
"""
import json
import time
import uuid
from collections import deque

import networkx as nx
import redis
from ryu.base import app_manager
from ryu.lib import hub

from netgpt.controller.base import NetgptApp
from netgpt.controller.ofp_util import flow_mod
from netgpt.controller.shortest_path import FORWARD_TABLE
from netgpt.core import bus
from netgpt.core.messages import AgentHeartbeat, Allocation, FlowAction, Forecast, MessageError, UserIntent

app_manager.require_app("ryu.app.ofctl.service")  # serves the barriers of netgpt.controller.ofp_util

REWRITE_PRIORITY = 20  # above the forwarding app's per-pair flows
REWRITE_COOKIE = 0x4E47_0002
DEMAND_WINDOW_S = 60.0
FAILBACK_AFTER_S = 2.0  # a cell returns to its home node once that node has been alive this long
# Against flapping (seen in the demo: c1 and c2 swapped between mec1 and mec2 every few seconds, 15-17 changes a run):
# a cell moved off its home node because of predicted demand returns only after SHED_HOLD_S, and only if the home node
# then has room for it plus FAILBACK_MARGIN of its capacity. Without both, a forecast that wobbles around the home
# node's capacity moves the cell away on one tick and back on the next.
SHED_HOLD_S = 30.0
FAILBACK_MARGIN = 0.1


class CellPlacement:
    """The choice of node per cell, on plain data (no switches, no Redis): what it remembers between ticks is when
    each node's current run of heartbeats began and the recent user intents per cell."""

    def __init__(self):
        self.first_seen: dict[str, float] = {}  # node -> when its current run of heartbeats began
        self.intent_times: dict[str, deque] = {}  # cell -> recent user-intent times
        self.forecast_demand: dict[str, tuple[float, float]] = {}  # cell -> (peak requests/s, until) from forecasts
        self.shed_at: dict[str, float] = {}  # cell -> when predicted demand or an overload last moved it off its node
        self.handed_at: dict[str, float] = {}  # node -> when it last handed a cell over (predicted demand or overload)
        self.recent_demand: dict[str, deque] = {}  # cell -> (time, predicted demand) of the last SHED_HOLD_S's ticks

    def count_intent(self, cell: str, ts: float) -> None:
        self.intent_times.setdefault(cell, deque()).append(ts)

    def on_forecast(self, fc: Forecast, quantile: float) -> None:
        """A 'cell:<cell>:requests_rps' forecast (the forecast loop's, from the cell's inferred user intents): its peak
        at `quantile` is the cell's demand until the forecast ends. Other targets (links, ports, a cell's bit/s) are
        traffic engineering's and are ignored."""
        t = fc.target
        if t.kind == "cell" and t.metric == "requests_rps":
            self.forecast_demand[t.cell] = (fc.peak(quantile), fc.end_ts)

    def predicted_demand(self, cell: str, now: float | None = None) -> float:
        """Requests per second the cell is about to send: its rate of user intents over the last minute, or its
        unexpired forecast if that is higher."""
        now = time.time() if now is None else now
        times = self.intent_times.get(cell, deque())
        while times and now - times[0] > DEMAND_WINDOW_S:
            times.popleft()
        peak, until = self.forecast_demand.get(cell, (0.0, 0.0))
        return max(len(times) / DEMAND_WINDOW_S, peak if until > now else 0.0)

    def decide(self, cells: list[str], agents: dict[str, AgentHeartbeat], allocations: dict[str, Allocation],
               pins: dict | None = None, now: float | None = None) -> dict[str, tuple[str, str]]:
        """cell -> (node_id, reason) for every cell that can be served; keeps allocations that are still good.
        An operator's pin wins while the pinned node is alive."""
        pins = pins or {}
        now = time.time() if now is None else now
        headroom = {n: hb.capacity_rps - hb.load_rps for n, hb in agents.items()}
        for n in agents:
            self.first_seen.setdefault(n, now)
        for n in list(self.first_seen):
            if n not in agents:
                del self.first_seen[n]  # a node that comes back must prove itself again before cells return
        out = {}
        demands = {c: self.predicted_demand(c, now) for c in cells}
        peaks = self._recent_peaks(demands, now)
        # Each node's room once the predicted demand of the cells it serves is counted (its reported load, if higher,
        # already includes them).
        serving: dict[str, list[str]] = {}
        for c, a in allocations.items():
            if c in demands and a.node_id in agents:
                serving.setdefault(a.node_id, []).append(c)
        # A node that handed a cell over in the last SHED_HOLD_S is judged on its cells' predicted demand alone: its
        # reported load (requests/s over the agent's recent window) still counts the moved cell's requests.
        room = {n: hb.capacity_rps - max(0.0 if self._handed_recently(n, now) else hb.load_rps,
                                         sum(demands[c] for c in serving.get(n, [])))
                for n, hb in agents.items()}
        shed = self._shed(serving, agents, room, demands, pins)
        for cell in shed:
            self.shed_at[cell] = now
            self.handed_at[allocations[cell].node_id] = now
        leaving = self._overload_leavers(serving, agents, demands, pins, shed, now)
        # Cells that stay first, so the headroom left for moved cells is right.
        for cell in sorted(cells, key=lambda c: c not in allocations):
            current = allocations.get(cell)
            demand = demands[cell]
            held = now - self.shed_at.get(cell, -SHED_HOLD_S) < SHED_HOLD_S
            margin = FAILBACK_MARGIN if cell in self.shed_at else 0.0  # once shed, a cell needs room to spare
            # once shed, a cell returns on the peak of its demand over the hold, not on one tick's dip in a forecast
            back = peaks[cell] if cell in self.shed_at else demand
            home_back = [] if held else [n for n, hb in agents.items() if cell in hb.cells and headroom[n] > back
                                         and room[n] >= back + margin * hb.capacity_rps
                                         and now - self.first_seen.get(n, now) >= FAILBACK_AFTER_S]
            if pins.get(cell) in agents:
                node = pins[cell]
                reason = current.reason if current and current.node_id == node else f"{cell} pinned to {node}"
            elif cell in shed:
                node, reason = shed[cell]
            elif current and current.node_id in agents and cell not in leaving and \
                    (cell in agents[current.node_id].cells or not home_back):
                node, reason = current.node_id, current.reason
            elif current and current.node_id in agents and home_back and cell not in leaving:
                node, reason = home_back[0], f"{cell} back to home node {home_back[0]} from {current.node_id}"
            else:
                if not agents:
                    continue
                homes = [n for n, hb in agents.items() if cell in hb.cells and headroom[n] > demand]
                node = homes[0] if homes else max(agents, key=lambda n: headroom[n])
                why = "failed" if current and current.node_id not in agents else "overloaded" if current else "new"
                if why == "overloaded":  # its return waits and needs room to spare, as after a shed
                    self.shed_at[cell] = self.handed_at[current.node_id] = now
                reason = (f"{cell} {why}" + (f" on {current.node_id}" if current else "")
                          + f" -> {node} ({'home node' if homes else 'most headroom'})")
            headroom[node] -= demand
            if cell in agents[node].cells:
                self.shed_at.pop(cell, None)  # home again: the hold and the margin were for this return only
            out[cell] = (node, reason)
        return out

    def _recent_peaks(self, demands: dict[str, float], now: float) -> dict[str, float]:
        """Each cell's highest predicted demand over the last SHED_HOLD_S of ticks, this one included."""
        peaks = {}
        for cell, demand in demands.items():
            seen = self.recent_demand.setdefault(cell, deque())
            seen.append((now, demand))
            while now - seen[0][0] > SHED_HOLD_S:
                seen.popleft()
            peaks[cell] = max(d for _, d in seen)
        return peaks

    def _handed_recently(self, node: str, now: float) -> bool:
        return now - self.handed_at.get(node, -SHED_HOLD_S) < SHED_HOLD_S

    def _overload_leavers(self, serving: dict[str, list[str]], agents: dict[str, AgentHeartbeat],
                          demands: dict[str, float], pins: dict, shed: dict, now: float) -> set[str]:
        """The cells that leave a node whose reported load is at its capacity: its busiest unpinned cell, one per node
        and tick, and none while the node handed a cell over in the last SHED_HOLD_S (this tick included). Its reported
        load is requests/s over the agent's recent window and still counts a moved cell's requests for a while: moving
        every cell of the node at once, and moving more of them on the next ticks, emptied mec1 in the demo and brought
        its cells back seconds later (28 changes in a 240-step day, 2026-12-07)."""
        leaving = set()
        for node, cells in serving.items():
            hb = agents[node]
            movable = [c for c in cells if c not in pins and c not in shed]
            if hb.load_rps >= hb.capacity_rps and not self._handed_recently(node, now) and movable:
                leaving.add(max(movable, key=lambda c: demands[c]))
        return leaving

    @staticmethod
    def _shed(serving: dict[str, list[str]], agents: dict[str, AgentHeartbeat], room: dict[str, float],
              demands: dict[str, float], pins: dict) -> dict[str, tuple[str, str]]:
        """cell -> (node, reason) for the cells to move before their node is overloaded: a node whose cells'
        predicted demand exceeds its capacity hands over its busiest unpinned cell that another node has room for
        (one cell per node and tick; the next tick sees the result); when the busiest fits nowhere, the busiest of
        those whose move ends the overload."""
        out = {}
        for node, cells in serving.items():
            if room[node] >= 0:
                continue
            excess = -room[node]
            for i, cell in enumerate(sorted((c for c in cells if c not in pins and demands[c] > 0),
                                            key=lambda c: -demands[c])):
                fits = [n for n in agents if n != node and room[n] >= demands[cell]]
                # When the busiest cell fits nowhere, a smaller one moves only if that ends the overload: moving a
                # cell of ~0 req/s relieved nothing and came back 30 s later (the demo, 2026-12-07: c1 at 0.0 req/s
                # shed 5 times in a day while c2's forecast kept mec1 over capacity).
                if fits and (i == 0 or demands[cell] >= excess):
                    to = max(fits, key=lambda n: room[n])
                    room[to] -= demands[cell]
                    predicted = agents[node].capacity_rps - room[node]
                    out[cell] = (to, f"{cell} predicted {demands[cell]:.1f} req/s: {node} would serve "
                                     f"{predicted:.1f} of {agents[node].capacity_rps:g} -> {to} (most headroom)")
                    break
        return out


class ComputeAllocation(NetgptApp):
    REDIS_TIMEOUT_S = 5.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.allocations: dict[str, Allocation] = {}
        # (cell, user mac) -> (node_id, the access switch's connection) of the rewrite installed. A switch that
        # reconnects comes back as a new connection with empty tables, which makes the entry stale.
        self.installed: dict[tuple[str, str], tuple[str, object]] = {}
        self.placement = CellPlacement()
        self._restore()

    def start(self):
        super().start()
        hub.spawn(self._loop)
        hub.spawn(self._consume_intents)

    def _restore(self):
        try:
            for cell, raw in self.redis.hgetall(bus.Keys.ALLOCATIONS).items():
                try:
                    msg = bus.parse_message(raw)
                    if isinstance(msg, Allocation):
                        self.allocations[cell] = msg
                except MessageError as exc:
                    self.logger.warning("stored allocation of %s dropped: %s", cell, exc)
        except redis.RedisError as exc:
            self.logger.warning("allocations not restored (%s); starting empty", exc)
        if self.allocations:
            self.logger.info("restored allocations: %s", {c: a.node_id for c, a in self.allocations.items()})

    # --- acting -------------------------------------------------------------------------------------------------------

    def _loop(self):
        while True:
            hub.sleep(self.settings.allocation_interval_s)
            if self.forwarding is None:
                continue
            try:
                self.reconcile()
            except redis.RedisError as exc:
                self.logger.warning("allocation paused, Redis unavailable: %s", exc)
            except Exception:
                self.logger.exception("allocation tick failed")

    def reconcile(self):
        fwd = self.forwarding
        agents = bus.live_agents(self.redis, self.drops)
        cells = {c: [tuple(p) for p in json.loads(v)] for c, v in self.redis.hgetall(bus.Keys.CELLS).items()}
        vip, vip_mac = self.settings.edge_vip, self.settings.edge_vip_mac
        fwd.add_proxy_arp(vip, vip_mac)  # users resolve the VIP through the forwarding app's proxy ARP
        pins = self.redis.hgetall(bus.Keys.PINS)
        for cell, (node, reason) in self.placement.decide(list(cells), agents, self.allocations, pins).items():
            current = self.allocations.get(cell)
            if current is None or current.node_id != node:
                alloc = Allocation(source="controller:allocation", cell=cell, node_id=node, vip=vip, reason=reason,
                                   previous_node_id=current.node_id if current else None)
                self.allocations[cell] = alloc
                self.redis.hset(bus.Keys.ALLOCATIONS, cell, alloc.model_dump_json())
                bus.publish(self.redis, bus.Streams.AUDIT, alloc)
                self.logger.info("allocation: %s", reason)
            node_ip = agents[node].address.rsplit(":", 1)[0]
            node_mac = fwd.arp_table.get(node_ip)
            if node_mac not in fwd.hosts:
                continue  # the node's host is not learned yet: try next tick
            for mac, loc in list(fwd.hosts.items()):
                if loc in cells[cell] and self.installed.get((cell, mac)) != (node, fwd.datapaths.get(loc[0])):
                    try:
                        self._steer(cell, mac, node, node_ip, node_mac, reason)
                    except (nx.NetworkXNoPath, nx.NodeNotFound):
                        self.logger.info("no path yet from %s to %s (topology still being discovered)", mac, node)

    def _steer(self, cell, user_mac, node, node_ip, node_mac, reason):
        """Rewrite VIP <-> node for one user at its access switch, with the paths between installed first."""
        fwd = self.forwarding
        user_ip = next((ip for ip, m in fwd.arp_table.items() if m == user_mac and ip != self.settings.edge_vip), None)
        if user_ip is None:
            return
        (adpid, aport), (ndpid, _) = fwd.hosts[user_mac], fwd.hosts[node_mac]
        dp = fwd.datapaths.get(adpid)
        if dp is None:
            return
        fwd.install_path(user_mac, node_mac, fwd.choose_path(user_mac, node_mac, adpid, ndpid), barrier=self.barrier)
        fwd.install_path(node_mac, user_mac, fwd.choose_path(node_mac, user_mac, ndpid, adpid), barrier=self.barrier)
        parser = dp.ofproto_parser
        vip, vip_mac = self.settings.edge_vip, self.settings.edge_vip_mac
        # Only the service's replies are rewritten: other traffic between the node and the user is left alone. A user
        # in a steered cell reaches the edge service through the VIP (a direct connection's replies would come back
        # from the VIP and be refused).
        egress = (parser.OFPMatch(eth_type=0x0800, ip_proto=6, ipv4_src=node_ip, ipv4_dst=user_ip,
                                  tcp_src=self.settings.edge_port),
                  [parser.OFPActionSetField(ipv4_src=vip), parser.OFPActionSetField(eth_src=vip_mac),
                   parser.OFPActionOutput(aport)])
        # Ingress: rewrite, then the forwarding table carries it as the (user, node) pair it now is.
        ingress = (parser.OFPMatch(in_port=aport, eth_type=0x0800, ipv4_dst=vip),
                   [parser.OFPActionSetField(eth_dst=node_mac), parser.OFPActionSetField(ipv4_dst=node_ip)])
        # Return path first, then the switch-over: a reply never meets a switch that cannot rewrite it.
        dp.send_msg(flow_mod(dp, REWRITE_PRIORITY, *egress, cookie=REWRITE_COOKIE))
        dp.send_msg(flow_mod(dp, REWRITE_PRIORITY, *ingress, cookie=REWRITE_COOKIE, goto_table=FORWARD_TABLE))
        self.barrier(dp)
        old = self.installed.get((cell, user_mac), (None,))[0]
        self.installed[(cell, user_mac)] = (node, dp)
        records = [FlowAction(source="controller:allocation", action_id=uuid.uuid4().hex[:12], op="add", dpid=adpid,
                              priority=REWRITE_PRIORITY, match=dict(m.items()),
                              actions=[_action_dict(a) for a in acts], reason=reason,
                              cause_id=f"allocation:{cell}:{old or '-'}->{node}") for m, acts in (egress, ingress)]
        bus.publish_many(self.redis, bus.Streams.AUDIT, records)

    # --- inputs -------------------------------------------------------------------------------------------------------

    def _consume_intents(self):
        """Count user intents and take demand forecasts per cell (consumer group 'allocation': the TE app reads the same
        streams separately)."""
        bus.consume_forever(self.redis, "allocation", "alloc", [bus.Streams.USER_INTENTS, bus.Streams.FORECASTS],
                            self._count_intent, start_id="$")

    def _count_intent(self, _stream, _entry_id, fields):
        try:
            msg = bus.decode_entry(fields)
        except MessageError as exc:
            self.drops.count(exc)
            return
        if isinstance(msg, UserIntent):
            self.placement.count_intent(msg.cell, msg.ts)
        elif isinstance(msg, Forecast):
            t = msg.target
            if t.kind == "cell" and t.metric == "requests_rps" and not self.redis.hexists(bus.Keys.CELLS, t.cell):
                self.drops.count(MessageError(f"unknown forecast target: {t} (no such cell)"))
                return
            self.placement.on_forecast(msg, self.settings.forecast_act_quantile)


def _action_dict(action) -> dict:
    if hasattr(action, "port") and action.__class__.__name__ == "OFPActionOutput":
        return {"type": "OUTPUT", "port": action.port}
    return {"type": "SET_FIELD", "field": action.key, "value": action.value}
