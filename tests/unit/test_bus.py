from netgpt.core import bus
from netgpt.core.messages import PortStats


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


def test_heartbeats_expire_and_bad_ones_are_dropped(redis_client):
    import time

    from netgpt.core.messages import AgentHeartbeat

    hb = AgentHeartbeat(node_id="mec1", address="10.0.0.51:8100", cells=["c1"], capacity_rps=5, load_rps=1)
    bus.write_heartbeat(redis_client, hb, ttl_s=0.3)
    redis_client.set(bus.Keys.agent("broken"), "{}")
    drops = bus.DropCounter()
    assert bus.live_agents(redis_client, drops) == {"mec1": hb} and sum(drops.counts.values()) == 1
    assert redis_client.xlen(bus.Streams.HEARTBEATS) == 1
    time.sleep(0.4)
    assert "mec1" not in bus.live_agents(redis_client)


class _Stop(BaseException):
    """Ends a reader the way a crash does (not a handler error, which consume_forever logs and gets past)."""


def test_consumer_group_redelivers_what_a_crashed_reader_had_not_acknowledged(redis_client):
    for port in (1, 2, 3):
        bus.publish(redis_client, bus.Streams.TELEMETRY,
                    PortStats(dpid=1, port_no=port, rx_bytes=0, tx_bytes=0, rx_packets=0, tx_packets=0))
    seen = []

    def crash_on_second(stream, entry_id, fields):
        seen.append(bus.decode_entry(fields).port_no)
        if len(seen) == 2:
            raise _Stop  # the reader dies before acknowledging entry 2

    def collect_until_three(stream, entry_id, fields):
        seen.append(bus.decode_entry(fields).port_no)
        if seen[-1] == 3:
            raise _Stop

    for handler in (crash_on_second, collect_until_three):
        try:
            bus.consume_forever(redis_client, "g", "c", [bus.Streams.TELEMETRY], handler)
        except _Stop:
            pass
    assert seen == [1, 2, 2, 3]


def test_a_handler_that_fails_on_one_entry_does_not_end_the_reader(redis_client):
    for port in (1, 2, 3):
        bus.publish(redis_client, bus.Streams.TELEMETRY,
                    PortStats(dpid=1, port_no=port, rx_bytes=0, tx_bytes=0, rx_packets=0, tx_packets=0))
    seen = []

    def fragile(stream, entry_id, fields):
        seen.append(bus.decode_entry(fields).port_no)
        if seen[-1] == 2:
            raise ValueError("a message the handler did not expect")
        if seen[-1] == 3:
            raise _Stop

    try:
        bus.consume_forever(redis_client, "g", "c", [bus.Streams.TELEMETRY], fragile)
    except _Stop:
        pass
    assert seen == [1, 2, 3]
    # The failed entry was acknowledged: a restarted reader does not meet it again.
    assert redis_client.xpending(bus.Streams.TELEMETRY, "g")["pending"] == 1  # only 3, which the "crash" left
