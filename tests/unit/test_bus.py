from netgpt import bus
from netgpt.messages import PortStats


def test_publish_and_read_back_dropping_malformed(redis_client):
    msg = PortStats(dpid=3, port_no=1, rx_bytes=100, tx_bytes=200, rx_packets=1, tx_packets=2)
    bus.publish(redis_client, bus.Streams.TELEMETRY, msg)
    redis_client.xadd(bus.Streams.TELEMETRY, {"kind": "port_stats", "v": "1", "data": '{"kind": "port_stats"}'})
    redis_client.xadd(bus.Streams.TELEMETRY, {"junk": "1"})
    bus.publish(redis_client, bus.Streams.TELEMETRY, msg)
    drops = bus.DropCounter()
    got = [m for _, m in bus.read_range(redis_client, bus.Streams.TELEMETRY, drops=drops)]
    assert got == [msg, msg]
    assert sum(drops.counts.values()) == 2
