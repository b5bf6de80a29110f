"""The monitor: rates from successive port counters, named by link from the forwarding app's topology, on Redis and
to the other apps (EventPortRates); per-cell rates from fresh samples only."""
import json
import time

from ryu.controller import ofp_event
from ryu.ofproto import ofproto_v1_3_parser as parser

from netgpt.controller.monitor import EventPortRates, Monitor
from netgpt.core import bus
from netgpt.core.messages import CellStats, PortStats
from tests.controller.fakes import FakeNetwork

ZERO = dict(rx_packets=0, tx_packets=0, rx_dropped=0, tx_dropped=0, rx_errors=0, tx_errors=0, rx_frame_err=0,
            rx_over_err=0, rx_crc_err=0, collisions=0, duration_sec=0, duration_nsec=0)


def _reply(monitor, dp, **tx_bytes_by_port):
    body = [parser.OFPPortStats(port_no=int(p[1:]), rx_bytes=0, tx_bytes=b, **ZERO)
            for p, b in tx_bytes_by_port.items()]
    monitor.port_stats_reply_handler(ofp_event.EventOFPPortStatsReply(parser.OFPPortStatsReply(dp, body=body)))


def test_port_rates_are_named_by_link_published_and_sent_to_the_other_apps(forwarding, settings, redis_client,
                                                                           monkeypatch):
    net = FakeNetwork(forwarding)
    net.switch(1, [1, 2])
    net.switch(2, [1, 2])
    net.link(1, 2, 2, 2)
    settings = settings.model_copy(update={"stats_interval_s": 0.2})  # samples count for 0.5 s
    monitor = Monitor(settings=settings, redis=redis_client, forwarding=forwarding)
    events = []
    monkeypatch.setattr(monitor, "send_event_to_observers", events.append)  # what Ryu would deliver to TE

    _reply(monitor, net.datapaths[1], p1=0, p2=0)
    time.sleep(0.1)
    _reply(monitor, net.datapaths[1], p1=1000, p2=100_000)
    stats = [m for _, m in bus.read_range(redis_client, bus.Streams.TELEMETRY) if isinstance(m, PortStats)]
    assert [(m.port_no, m.link) for m in stats] == [(1, None), (2, "1-2")] * 2
    assert stats[0].tx_bps == 0.0 and 0 < stats[3].tx_bps <= 100_000 * 8 / 0.1
    assert [e.dpid for e in events] == [1, 1] and isinstance(events[-1], EventPortRates)
    assert events[-1].rates[2].tx_bps == stats[3].tx_bps

    redis_client.hset(bus.Keys.CELLS, mapping={"c1": json.dumps([[1, 1]]), "c2": json.dumps([[2, 1]])})
    monitor.publish_cells()
    cells = [m for _, m in bus.read_range(redis_client, bus.Streams.TELEMETRY) if isinstance(m, CellStats)]
    assert [(m.cell, m.downlink_bps, m.ports) for m in cells] == [("c1", stats[2].tx_bps, 1)]  # c2 has no samples
    time.sleep(monitor.fresh_s)
    monitor.publish_cells()  # c1's sample is too old now: no cell rates rather than old ones
    assert len([m for _, m in bus.read_range(redis_client, bus.Streams.TELEMETRY) if isinstance(m, CellStats)]) == 1
