"""Switch monitoring: port and flow statistics every Settings.stats_interval_s, as PortStats/FlowStats on Redis.

Rates are computed here from successive counters, so every consumer sees the same numbers: on Redis, and inside the
controller as an EventPortRates per statistics reply (traffic engineering observes it). A counter that goes down
(switch restart, counter wrap) starts a new baseline instead of producing a negative or huge rate.
"""
import json
import time
from typing import NamedTuple

import redis
from ryu.controller import event, ofp_event
from ryu.controller.handler import DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from ryu.lib import hub

from netgpt.controller.base import NetgptApp
from netgpt.core import bus
from netgpt.core.messages import CellStats, FlowStats, PortStats


class PortRate(NamedTuple):
    ts: float  # when the sample was taken (unix seconds)
    rx_bps: float
    tx_bps: float


class EventPortRates(event.EventBase):
    """The rates of one switch's ports, just computed from a statistics reply: dpid, {port: PortRate}."""

    def __init__(self, dpid: int, rates: dict[int, PortRate]):
        super().__init__()
        self.dpid, self.rates = dpid, rates


class Monitor(NetgptApp):
    _EVENTS = [EventPortRates]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.datapaths = {}
        self.last: dict[tuple[int, int], tuple[float, int, int]] = {}  # (dpid, port) -> (time, rx_bytes, tx_bytes)
        self.rates: dict[tuple[int, int], PortRate] = {}  # (dpid, port) -> latest rates
        self.published = 0
        self.publish_errors = 0

    def start(self):
        super().start()
        hub.spawn(self._poll)

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def state_change_handler(self, ev):
        dp = ev.datapath
        if ev.state == MAIN_DISPATCHER:
            self.datapaths[dp.id] = dp
        elif dp.id in self.datapaths:
            del self.datapaths[dp.id]
            self.last = {k: v for k, v in self.last.items() if k[0] != dp.id}
            self.rates = {k: v for k, v in self.rates.items() if k[0] != dp.id}

    def _poll(self):
        while True:
            for dp in list(self.datapaths.values()):
                parser, ofp = dp.ofproto_parser, dp.ofproto
                dp.send_msg(parser.OFPPortStatsRequest(dp, 0, ofp.OFPP_ANY))
                dp.send_msg(parser.OFPFlowStatsRequest(dp))
            hub.sleep(self.settings.stats_interval_s)
            self.publish_cells()

    def _link_names(self, dpid: int) -> dict[int, str]:
        """port -> 'a-b' (dpids, smaller first) for the switch's inter-switch ports, from the forwarding app's graph
        (kept current by its topology events; no topology request per statistics reply)."""
        fwd = self.forwarding
        if fwd is None or dpid not in fwd.graph:
            return {}
        return {d["port"]: "-".join(str(x) for x in sorted((dpid, b)))
                for _, b, d in fwd.graph.out_edges(dpid, data=True)}

    def publish_cells(self):
        """Per-cell rates from the latest samples of each cell's access ports (cells come from Redis netgpt:cells)."""
        try:
            cells = {c: json.loads(v) for c, v in self.redis.hgetall(bus.Keys.CELLS).items()}
        except (redis.RedisError, ValueError) as exc:
            self.logger.warning("cells not read: %s", exc)
            return
        now = time.time()
        out = []
        for cell, ports in cells.items():
            samples = [self.rates[(d, p)] for d, p in ports if (d, p) in self.rates
                       and self.is_fresh(self.rates[(d, p)].ts, now)]
            if samples:
                out.append(CellStats(source="controller", cell=cell, uplink_bps=sum(s.rx_bps for s in samples),
                                     downlink_bps=sum(s.tx_bps for s in samples), ports=len(samples)))
        if out:
            self._publish(bus.Streams.TELEMETRY, out)

    def _publish(self, stream, messages):
        try:
            bus.publish_many(self.redis, stream, messages, self.settings.stream_maxlen)
            self.published += len(messages)
        except redis.RedisError as exc:
            # Monitoring must outlive a Redis outage; samples from the gap are lost, counters are not.
            self.publish_errors += 1
            self.logger.warning("telemetry not published (%s); will retry next interval", exc)

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN_DISPATCHER)
    def port_stats_reply_handler(self, ev):
        now = time.time()
        dpid = ev.msg.datapath.id
        links = self._link_names(dpid)
        out, rates = [], {}
        for st in ev.msg.body:
            if st.port_no > 0xFFFFFF00:  # OFPP_LOCAL and other reserved ports
                continue
            key = (dpid, st.port_no)
            rx_bps = tx_bps = interval = 0.0
            prev = self.last.get(key)
            if prev and now > prev[0] and st.rx_bytes >= prev[1] and st.tx_bytes >= prev[2]:
                interval = now - prev[0]
                rx_bps = (st.rx_bytes - prev[1]) * 8 / interval
                tx_bps = (st.tx_bytes - prev[2]) * 8 / interval
            self.last[key] = (now, st.rx_bytes, st.tx_bytes)
            self.rates[key] = rates[st.port_no] = PortRate(now, rx_bps, tx_bps)
            out.append(PortStats(source="controller", ts=now, dpid=dpid, port_no=st.port_no, rx_bytes=st.rx_bytes,
                                 tx_bytes=st.tx_bytes, rx_packets=st.rx_packets, tx_packets=st.tx_packets,
                                 rx_dropped=st.rx_dropped, tx_dropped=st.tx_dropped, rx_bps=rx_bps, tx_bps=tx_bps,
                                 interval_s=interval, link=links.get(st.port_no)))
        if rates:
            self.send_event_to_observers(EventPortRates(dpid, rates))
        if out:
            self._publish(bus.Streams.TELEMETRY, out)

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def flow_stats_reply_handler(self, ev):
        dpid = ev.msg.datapath.id
        out = [FlowStats(source="controller", dpid=dpid, table_id=st.table_id, priority=st.priority,
                         match=dict(st.match.items()), byte_count=st.byte_count, packet_count=st.packet_count,
                         duration_s=st.duration_sec + st.duration_nsec / 1e9)
               for st in ev.msg.body]
        if out:
            self._publish(bus.Streams.TELEMETRY, out)
