"""Traffic engineering: keep links under Settings.te_threshold utilisation by moving source-destination pairs among
the k shortest paths.

Modes (Settings.te_mode):
- static: weighted shortest path, never moved (the baseline).
- ecmp: every equal-cost shortest path at once, never moved (the forwarding app's select groups; the ECMP baseline).
- reactive: new pairs take the shortest path; every stats interval, a link whose *measured* utilisation exceeds the
  threshold has its largest pair moved to the path with the lowest resulting peak utilisation. Against flapping: a
  moved pair stays put for te_holddown_s, a move is counted in the loads until the measurements show it, and a move
  that leaves the pair on a path still over the threshold must lower its peak by HOT_MOVE_GAIN.
- proactive: as reactive, but the load it sees also includes what is coming: link forecasts (Forecast messages for a
  link or an inter-switch port, read at their Settings.forecast_act_quantile upper quantile), the expected demand of
  user intents (UserIntent with user_ip/server_ip) that has not arrived yet (an announcement counts until the pair's
  own traffic is established; then its measured rate replaces it), and each cell's demand forecast from its
  inferred intents ('cell:<c>:demand_bps', edge_agent/user_intent/demand.py): the part of it that neither the
  measurements nor the pairs' own intents account for is put on the links into the cell's access switches (those its
  users' pairs use, else all of them). New pairs, and an intent's pair as soon as the intent arrives (before its first
  packet), go on the least-loaded of the k shortest. A move made because a forecast, not a measurement, put a link over
  the threshold says so in its cause ('... (forecast)').
- A forecast TE cannot place (a port or link the topology does not have, a cell nobody published) is a counted drop;
  targets that are another app's (a cell's requests/s: allocation) or carry no inter-switch traffic (an access port)
  are left alone.

The choice itself (peak utilisation, best path, hot links, whether a move is worth it) is plain functions of loads and
capacities, in controller/path_choice.py; the app gathers the loads (port rates from the monitor's EventPortRates,
per-pair rates from flow statistics, intents and forecasts) and moves pairs through the forwarding app's interface.

Demand direction: an intent's traffic flows server -> user (downlink), the common case for generative and streaming
services. Inputs come from Redis streams through the consumer group 'controller', so nothing is lost while the
controller restarts; malformed or stale messages are logged, counted and dropped. Every change is a FlowAction on the
audit stream, with the flow's previous actions so it can be reverted.
"""
import json
import time
import uuid

import networkx as nx
import redis
from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import MAIN_DISPATCHER, set_ev_cls
from ryu.lib import hub

from netgpt.controller.base import NetgptApp
from netgpt.controller.monitor import EventPortRates, PortRate
from netgpt.controller.path_choice import (Link, hot_links, least_loaded_path, links_of, move_delta,
                                           peak_utilisation, worth_moving)
from netgpt.controller.shortest_path import FORWARD_PRIORITY
from netgpt.core import bus
from netgpt.core.messages import FlowAction, Forecast, MessageError, UserIntent

app_manager.require_app("ryu.app.ofctl.service")  # serves the barriers of netgpt.controller.ofp_util

GROUP, CONSUMER = "controller", "te"
STALE_AFTER_S = 60.0
MIN_SHARE = 0.05  # pairs under 5% of a hot link's capacity are not moved
# An intent's bandwidth is a prior (the classifier's figure for its class): once the pair's own traffic carries at
# least ARRIVED_SHARE of it (so a ping or an ARP exchange is not the session), and has done so for ESTABLISHED_INTERVALS
# stats intervals (a first reading covers part of an interval, TCP ramps up), the measured rate replaces it.
ARRIVED_SHARE = 0.1
ESTABLISHED_INTERVALS = 2

Pair = tuple[str, str]


class TrafficEngineering(NetgptApp):
    REDIS_TIMEOUT_S = 5.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.port_rates: dict[tuple[int, int], PortRate] = {}  # (dpid, port) -> latest rates, from the monitor
        self.flow_bytes: dict[Pair, tuple[float, int]] = {}  # pair -> (time, bytes) at its first switch
        self.pair_rate: dict[Pair, float] = {}  # pair -> measured bit/s
        self.expected: dict[Pair, tuple[float, float]] = {}  # pair -> (bit/s, until) from intents, until measured
        self.arrived_at: dict[Pair, float] = {}  # pair -> when its traffic showed up after its latest intent
        self.link_forecast: dict[Link, tuple[float, float, float]] = {}  # link -> (peak bit/s, until, origin)
        self.cell_forecast: dict[str, tuple[float, float]] = {}  # cell -> (peak bit/s into it, until)
        self.cells_cache: tuple[float, dict[str, set[tuple[int, int]]]] = (0.0, {})  # (read at, cell -> access ports)
        self.moved_at: dict[Pair, float] = {}
        # Moves that measurements or forecasts may not show yet: (moved at, old path, new path, bit/s).
        self.recent_moves: list[tuple[float, list[int], list[int], float]] = []
        self.caps_cache: tuple[float, dict[Link, float]] = (0.0, {})  # (read at, capacities)
        self.moves = 0

    def start(self):
        super().start()
        if self.settings.te_mode not in ("static", "ecmp"):  # the baselines: nothing is moved
            hub.spawn(self._consume)
            hub.spawn(self._control_loop)

    def _capacities(self) -> dict[Link, float]:
        """Directed link -> bit/s. Links without a published capacity are not managed. Read from Redis at most once
        per stats interval: a new pair's first packet (proactive placement) must not wait on Redis."""
        read_at, caps = self.caps_cache
        if time.time() - read_at < self.settings.stats_interval_s:
            return caps
        try:
            raw = self.redis.hgetall(bus.Keys.LINK_CAPACITY)
        except redis.RedisError:
            return caps
        caps = {}
        for name, mbps in raw.items():
            a, b = (int(x) for x in name.split("-"))
            caps[(a, b)] = caps[(b, a)] = float(mbps) * 1e6
        if caps:  # none published yet: read again next time, so the first decisions after publishing see them
            self.caps_cache = (time.time(), caps)
        return caps

    def _cells(self) -> dict[str, set[tuple[int, int]]]:
        """cell -> its access ports (dpid, port), from Redis netgpt:cells, read at most once per stats interval."""
        read_at, cells = self.cells_cache
        if time.time() - read_at < self.settings.stats_interval_s:
            return cells
        try:
            cells = {c: {tuple(p) for p in json.loads(v)} for c, v in self.redis.hgetall(bus.Keys.CELLS).items()}
        except redis.RedisError:
            return cells
        self.cells_cache = (time.time(), cells)
        return cells

    # --- the load the controller believes each link carries -------------------------------------------------------

    def measured_loads(self, now: float) -> dict[Link, float]:
        """Each link's fresh measured rate, with the moves the measurements do not show yet."""
        fwd, interval = self.forwarding, self.settings.stats_interval_s
        loads, sampled_at = {}, {}
        for a, b, data in fwd.graph.edges(data=True):
            sample = self.port_rates.get((a, data["port"]))
            fresh = sample is not None and self.is_fresh(sample.ts, now)
            loads[(a, b)], sampled_at[(a, b)] = (sample.tx_bps, sample.ts) if fresh else (0.0, None)
        # A pair moved a moment ago still shows on its old path's rates: without this, the next tick would see the old
        # path as hot as before and move a second pair after the first. But only a sample whose interval (one stats
        # interval before it was taken) began before the move has it in the wrong place, pro rata; counting the move
        # again on a sample that already shows it doubles the pair on its new path, which then looks hot and has a pair
        # moved back (seen in bench/loop.py, reactive mode: 16-24 moves a run, pairs ping-ponging every hold-down).
        window = interval + self.fresh_s  # how long after a move some fresh sample may still predate it
        oldest_forecast = min((origin for _, until, origin in self.link_forecast.values() if until > now), default=now)
        self.recent_moves = [m for m in self.recent_moves if m[0] + window > now or m[0] > oldest_forecast]
        for moved, old, new, bps in self.recent_moves:
            if moved + window <= now:
                continue  # every fresh sample shows it (kept for the forecasts, link_loads)
            for l, d in move_delta(old, new, bps).items():
                if l in loads:
                    ts = sampled_at[l]
                    unseen = 1.0 if ts is None else min(1.0, max(0.0, (moved + interval - ts) / interval))
                    loads[l] = max(0.0, loads[l] + d * unseen)
        return loads

    def link_loads(self, measured: dict[Link, float] | None = None) -> dict[Link, float]:
        """What each link carries (measured_loads, or `measured` when the caller has them) and, in proactive mode,
        may carry soon: forecasts, intents."""
        fwd, now = self.forwarding, time.time()
        loads = dict(measured) if measured is not None else self.measured_loads(now)
        if self.settings.te_mode == "proactive":
            for link, (peak, until, origin) in self.link_forecast.items():
                if until > now and link in loads:
                    # A forecast continues the history it saw: a pair moved after its last observation is still on
                    # its old path there (else the old path keeps its phantom and the pair is moved back and forth).
                    shift = sum(move_delta(old, new, bps).get(link, 0.0)
                                for moved, old, new, bps in self.recent_moves if moved > origin)
                    loads[link] = max(loads[link], peak + shift)
            for pair, path in fwd.paths.items():
                pending = self._pending(pair, now)
                for link in links_of(path):
                    if link in loads:
                        loads[link] += pending
            self._add_cell_demand(loads, now)
        return loads

    def _add_cell_demand(self, loads: dict[Link, float], now: float) -> None:
        """A cell's forecast demand beyond what its users' pairs carry or announced, on the links into its access
        switches: the ones its pairs use (split evenly), or every one while it has none."""
        fwd, cells = self.forwarding, self._cells()
        for cell, (peak, until) in self.cell_forecast.items():
            ports = cells.get(cell)
            if until <= now or not ports:
                continue
            access = {dpid for dpid, _ in ports}
            pairs = [p for p in fwd.paths if tuple(fwd.hosts.get(p[1], ())) in ports]
            pending = peak - sum(max(self.measured_rate(p), self._expected_bps(p, now)) for p in pairs)
            if pending <= 0:
                continue
            used = {(path[-2], path[-1]) for p in pairs if len(path := fwd.paths[p]) > 1 and path[-1] in access}
            into = used or {(a, b) for a, b in fwd.graph.in_edges(access) if a not in access}
            for link in into & loads.keys():
                loads[link] += pending / len(into)

    def _expected_bps(self, pair, now: float) -> float:
        """What a user intent announced for the pair, while the announcement lasts."""
        bps, until = self.expected.get(pair, (0.0, 0.0))
        return bps if until > now else 0.0

    def _pending(self, pair, now) -> float:
        """Expected demand of a pair that has not shown up in measurements yet."""
        return max(0.0, self._expected_bps(pair, now) - self.measured_rate(pair))

    def measured_rate(self, pair) -> float:
        """The pair's measured bit/s; 0 once its flow stops reporting (idled out, deleted): a dead pair is not moved."""
        sample = self.flow_bytes.get(pair)
        fresh = sample is not None and self.is_fresh(sample[0])
        return self.pair_rate.get(pair, 0.0) if fresh else 0.0

    def demand(self, pair) -> float:
        """What the pair carries or, in proactive mode, is announced to carry soon (the larger)."""
        expected = self._expected_bps(pair, time.time()) if self.settings.te_mode == "proactive" else 0.0
        return max(self.measured_rate(pair), expected)

    # --- path choice ------------------------------------------------------------------------------------------------

    def best_path(self, src_mac, dst_mac, src_dpid, dst_dpid, loads=None, caps=None) -> list[int]:
        """Among the k shortest paths, the one with the lowest peak utilisation once this pair's demand is on it.
        Also the forwarding app's path policy in proactive mode."""
        fwd = self.forwarding
        loads = self.link_loads() if loads is None else loads
        caps = self._capacities() if caps is None else caps
        pair = (src_mac, dst_mac)
        current = fwd.paths.get(pair, [])
        # Stay on the current path (or the shortest, for a new pair) unless another is clearly better.
        default = current if current and current[0] == src_dpid else fwd.shortest_path(src_mac, dst_mac, src_dpid,
                                                                                        dst_dpid)
        candidates = nx.shortest_simple_paths(fwd.graph, src_dpid, dst_dpid, weight="weight")
        return least_loaded_path(candidates, default, loads, caps, self.demand(pair), current, self.settings.te_k_paths)

    def peak_with(self, pair, path, loads, caps, demand: float) -> float:
        """The highest utilisation along `path` once the pair's `demand` is there (and off its current path)."""
        return peak_utilisation(path, loads, caps, demand, self.forwarding.paths.get(pair, []))

    # --- acting -----------------------------------------------------------------------------------------------------

    def move(self, pair, path, cause: str) -> None:
        fwd = self.forwarding
        old = fwd.paths.get(pair, [])
        old_out = dict(fwd.hops(old, pair[1])) if old else {}
        hops = fwd.install_path(pair[0], pair[1], path, barrier=self.barrier)
        self.moved_at[pair] = time.time()
        # What the measurements will shift is what the pair carries now; an intent's not-yet-measured part is counted
        # on its (new) path by link_loads already.
        self.recent_moves.append((self.moved_at[pair], list(old), list(path), self.measured_rate(pair)))
        self.moves += 1
        records = [FlowAction(source="controller:te", action_id=uuid.uuid4().hex[:12], op="add", dpid=dpid,
                              priority=FORWARD_PRIORITY, match={"eth_src": pair[0], "eth_dst": pair[1]},
                              actions=[{"type": "OUTPUT", "port": port}],
                              previous_actions=[{"type": "OUTPUT", "port": old_out[dpid]}] if dpid in old_out else [],
                              reason=f"path {old or '-'} -> {path}", cause_id=cause)
                   for dpid, port in reversed(hops)]  # in the order they were installed
        self.logger.info("TE: moved %s -> %s from %s to %s (%s)", pair[0], pair[1], old, path, cause)
        try:
            bus.publish_many(self.redis, bus.Streams.AUDIT, records)
        except redis.RedisError as exc:
            self.logger.warning("audit records not written: %s", exc)

    def _control_loop(self):
        while self.forwarding is None:
            hub.sleep(0.1)
        if self.settings.te_mode == "proactive":
            # A pair's first packet takes the best path for the demand it may already be expected to bring; reactive
            # keeps plain shortest paths for new pairs.
            self.forwarding.set_path_policy(self.best_path)
        while True:
            hub.sleep(self.settings.stats_interval_s)
            try:
                self.relieve_links()
            except Exception:  # the loop must outlive any one bad tick
                self.logger.exception("TE tick failed")

    def relieve_links(self) -> None:
        """One tick: on each hot link, hottest first, move its largest movable pair if that helps."""
        fwd, now = self.forwarding, time.time()
        measured = self.measured_loads(now)
        loads, caps = self.link_loads(measured), self._capacities()
        # Once per tick: each pair's links and demand (both are asked for every pair on every hot link).
        settled = {p: set(links_of(path)) for p, path in fwd.paths.items()
                   if now - self.moved_at.get(p, 0.0) >= self.settings.te_holddown_s}
        demands = {p: self.demand(p) for p in settled}
        for link in hot_links(loads, caps, self.settings.te_threshold):
            if loads[link] / caps[link] <= self.settings.te_threshold:
                continue  # relieved by this tick's earlier move (the next link of the same path, typically)
            why = "" if measured.get(link, 0.0) / caps[link] > self.settings.te_threshold else " (forecast)"
            # Only pairs that carry a real share of the link are worth moving.
            movable = [p for p, links in settled.items() if link in links and demands[p] >= MIN_SHARE * caps[link]]
            for pair in sorted(movable, key=lambda p: -demands[p]):
                path = fwd.paths[pair]
                new = self.best_path(pair[0], pair[1], path[0], path[-1], loads, caps)
                demand = demands[pair]
                after = self.peak_with(pair, new, loads, caps, demand)
                before = self.peak_with(pair, path, loads, caps, demand)
                if not worth_moving(before, after, self.settings.te_threshold):
                    continue
                if new != path:
                    self.move(pair, new, cause=f"{self.settings.te_mode}:link {link[0]}-{link[1]} at "
                                                f"{loads[link] / caps[link]:.0%}{why}")
                    del settled[pair]  # just moved: in its hold-down now, as the next hot links see it
                    for l in links_of(path):
                        loads[l] = loads.get(l, 0.0) - demand
                    for l in links_of(new):
                        loads[l] = loads.get(l, 0.0) + demand
                    break

    # --- measurements -----------------------------------------------------------------------------------------------

    @set_ev_cls(EventPortRates)
    def port_rates_handler(self, ev):
        for port, rate in ev.rates.items():
            self.port_rates[(ev.dpid, port)] = rate

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def flow_stats_reply_handler(self, ev):
        """Per-pair rates, counted at the pair's first switch."""
        fwd, dpid, now = self.forwarding, ev.msg.datapath.id, time.time()
        if fwd is None:
            return
        for st in ev.msg.body:
            pair = (st.match.get("eth_src"), st.match.get("eth_dst"))
            path = fwd.paths.get(pair)
            if path and path[0] == dpid:
                self.count_pair_bytes(pair, now, st.byte_count)

    def count_pair_bytes(self, pair, now: float, byte_count: int) -> None:
        """A pair's byte counter read at `now`: its rate since the previous reading (a counter that went down, a flow
        re-installed, starts a new baseline)."""
        prev = self.flow_bytes.get(pair)
        if prev and now > prev[0] and byte_count >= prev[1]:
            self.pair_rate[pair] = (byte_count - prev[1]) * 8 / (now - prev[0])
            self._settle_intent(pair, now)
        self.flow_bytes[pair] = (now, byte_count)

    def _settle_intent(self, pair, now: float) -> None:
        """Trade an intent's announced bandwidth for the pair's measured rate once its traffic is established (see
        ARRIVED_SHARE): a download announced at 20 Mbit/s that sends 8 would otherwise keep 12 Mbit/s of phantom load
        on its path for the whole announcement, and proactive TE would route other pairs around load that is not
        there (seen in bench/loop.py: pairs moved onto the really congested path)."""
        bps, until = self.expected.get(pair, (0.0, 0.0))
        if until <= now:
            return
        if pair not in self.arrived_at:
            if self.pair_rate[pair] >= ARRIVED_SHARE * bps:
                self.arrived_at[pair] = now
        elif now - self.arrived_at[pair] >= ESTABLISHED_INTERVALS * self.settings.stats_interval_s:
            if self.moved_at.get(pair, now) < self.arrived_at[pair]:
                # Placed before its traffic (on its intent): the hold-down, against moving traffic back and forth, had
                # no traffic to protect. Judged on what it carries from now on (bench/loop.py: a stream placed on a
                # path that its real rate overloaded waited out a hold-down begun two seconds before its first packet).
                del self.moved_at[pair]
            del self.expected[pair], self.arrived_at[pair]
            self.logger.info("TE: %s -> %s measured at %.1f Mbit/s, its intent announced %.1f", pair[0], pair[1],
                             self.pair_rate[pair] / 1e6, bps / 1e6)

    # --- inputs from Redis ------------------------------------------------------------------------------------------

    def _consume(self):
        bus.consume_forever(self.redis, GROUP, CONSUMER, [bus.Streams.USER_INTENTS, bus.Streams.FORECASTS],
                            self.handle_entry)

    def handle_entry(self, stream, entry_id, fields):
        try:
            msg = bus.decode_entry(fields)
            if time.time() - msg.ts > STALE_AFTER_S:
                raise MessageError(f"stale: {time.time() - msg.ts:.0f} s old")
            if isinstance(msg, UserIntent):
                self.on_user_intent(msg)
            elif isinstance(msg, Forecast):
                self.on_forecast(msg)
            else:
                raise MessageError(f"unexpected kind {msg.kind} on {stream}")
        except MessageError as exc:
            self.drops.count(exc)
            self.logger.warning("dropped %s %s: %s", stream, entry_id, exc)

    def on_user_intent(self, intent: UserIntent) -> None:
        fwd = self.forwarding
        if fwd is None or not intent.user_ip or not intent.server_ip:
            return
        macs = (fwd.arp_table.get(intent.server_ip), fwd.arp_table.get(intent.user_ip))
        if None in macs or macs[0] not in fwd.hosts or macs[1] not in fwd.hosts:
            raise MessageError(f"unknown hosts: intent {intent.request_id} names {intent.server_ip}/{intent.user_ip}")
        pair = (macs[0], macs[1])
        self.expected[pair] = (intent.bandwidth_mbps * 1e6, time.time() + max(intent.duration_s, 1.0))
        self.arrived_at.pop(pair, None)  # a new announcement: the pair's traffic must show it again
        if self.settings.te_mode == "proactive":
            src_dpid, dst_dpid = fwd.hosts[pair[0]][0], fwd.hosts[pair[1]][0]
            path = self.best_path(pair[0], pair[1], src_dpid, dst_dpid)
            if path != fwd.paths.get(pair):
                self.move(pair, path, cause=f"intent:{intent.request_id}")

    def on_forecast(self, fc: Forecast) -> None:
        """A link's or an inter-switch port's rate, or a cell's demand in bit/s; see the module docstring for what is
        left alone and what is a drop (MessageError)."""
        t, fwd = fc.target, self.forwarding
        # The configured upper quantile, not the point value: a link is provisioned for the load it may carry (falls
        # back to the point values for a forecast without quantiles).
        peak = (fc.peak(self.settings.forecast_act_quantile), fc.end_ts, fc.origin_ts)
        if t.kind == "cell":
            if t.metric == "requests_rps":
                return  # requests to the MEC nodes: compute allocation's
            if t.cell not in self._cells():
                raise MessageError(f"unknown forecast target: {t} (no such cell)")
            self.cell_forecast[t.cell] = peak[:2]
            return
        if fwd is None:
            raise MessageError(f"unknown forecast target: {t} (topology not known yet)")
        if t.kind == "link":
            if not fwd.graph.has_edge(*t.link):
                raise MessageError(f"unknown forecast target: {t} (no such link)")
            self.link_forecast[t.link] = peak
            return
        link = next(((a, b) for a, b, d in fwd.graph.out_edges(t.dpid, data=True) if d["port"] == t.port_no),
                    None) if t.dpid in fwd.graph else None
        if link is not None:
            self.link_forecast[link] = peak
        elif (t.dpid, t.port_no) not in {tuple(loc) for loc in fwd.hosts.values()}:
            raise MessageError(f"unknown forecast target: {t} (no such inter-switch or host port)")
