"""Switch monitoring: port and flow statistics every Settings.stats_interval_s, as PortStats/FlowStats on Redis.

Rates are computed here from successive counters, so every consumer sees the same numbers. A counter that goes down
(switch restart, counter wrap) starts a new baseline instead of producing a negative or huge rate.
"""
import json
import time

import redis
from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from ryu.lib import hub
from ryu.ofproto import ofproto_v1_3

from netgpt import bus
from netgpt.messages import CellStats, FlowStats, PortStats
from netgpt.settings import get_settings


class Monitor(app_manager.RyuApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.settings = get_settings()
        self.redis = bus.connect(self.settings)
        self.datapaths = {}
        self.last: dict[tuple[int, int], tuple[float, int, int]] = {}  # (dpid, port) -> (time, rx_bytes, tx_bytes)
        self.rates: dict[tuple[int, int], tuple[float, float, float]] = {}  # (dpid, port) -> (time, rx_bps, tx_bps)
        self.published = 0
        self.publish_errors = 0
        self.monitor_thread = hub.spawn(self._poll)

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
            self._publish_cells()

    def _link_names(self, dpid: int) -> dict[int, str]:
        """port -> 'a-b' (dpids, smaller first) for the switch's inter-switch ports, from the forwarding app's graph
        (kept current by its topology events; no topology request per statistics reply)."""
        fwd = app_manager.lookup_service_brick("ShortestPathForwarding")
        if fwd is None or dpid not in fwd.graph:
            return {}
        return {d["port"]: "-".join(str(x) for x in sorted((dpid, b)))
                for _, b, d in fwd.graph.out_edges(dpid, data=True)}

    def _publish_cells(self):
        """Per-cell rates from the latest samples of each cell's access ports (cells come from Redis netgpt:cells)."""
        try:
            cells = {c: json.loads(v) for c, v in self.redis.hgetall(bus.Keys.CELLS).items()}
        except (redis.RedisError, ValueError) as exc:
            self.logger.warning("cells not read: %s", exc)
            return
        now, fresh = time.time(), 2.5 * self.settings.stats_interval_s
        out = []
        for cell, ports in cells.items():
            samples = [self.rates[(d, p)] for d, p in ports if (d, p) in self.rates
                       and now - self.rates[(d, p)][0] < fresh]
            if samples:
                out.append(CellStats(source="controller", cell=cell, uplink_bps=sum(s[1] for s in samples),
                                     downlink_bps=sum(s[2] for s in samples), ports=len(samples)))
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
        out = []
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
            self.rates[key] = (now, rx_bps, tx_bps)
            out.append(PortStats(source="controller", ts=now, dpid=dpid, port_no=st.port_no, rx_bytes=st.rx_bytes,
                                 tx_bytes=st.tx_bytes, rx_packets=st.rx_packets, tx_packets=st.tx_packets,
                                 rx_dropped=st.rx_dropped, tx_dropped=st.tx_dropped, rx_bps=rx_bps, tx_bps=tx_bps,
                                 interval_s=interval, link=links.get(st.port_no)))
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
