"""The foundation end to end on real parts: redis-server, Open vSwitch (userspace), ryu-manager with the NetGPT
learning switch and monitor, a 7-switch MEC topology in Mininet, TCP iperf, and telemetry read back from Redis."""
import os
import time

import pytest

from netgpt import bus
from netgpt.messages import PortStats

pytestmark = pytest.mark.integration


def test_mec_topology_ping_iperf_and_telemetry(stack):
    from mininet_topos.network import bridges, iperf, port_links, running_network

    host_pids = []
    with running_network("mec", stack.ofp_port) as net:
        host_pids = [h.pid for h in net.hosts]
        switch_names = {sw.name for sw in net.switches}
        assert len(switch_names) >= 3
        assert net.pingAll(timeout=2) == 0.0
        mbps = iperf(net, "u1", "cloud", seconds=3)
        assert mbps > 100, f"TCP u1->cloud only {mbps} Mbit/s"
        links = port_links(net)
        time.sleep(2.5 * stack.stats_interval_s)  # at least two samples after the load

    r = bus.connect(stack)
    samples = [m for _, m in bus.read_range(r, bus.Streams.TELEMETRY) if isinstance(m, PortStats)]
    on_links = [m for m in samples if (m.dpid, m.port_no) in links]
    assert on_links, "no port statistics for the topology's switch ports in Redis"
    assert max(m.rx_bytes for m in on_links) > 0 and max(m.tx_bytes for m in on_links) > 0
    # The iperf flow crossed the access link of u1: some sample there saw well over 50 Mbit/s.
    u1_ports = {k for k, name in links.items() if name == "u1-acc1"}
    assert max(m.rx_bps for m in on_links if (m.dpid, m.port_no) in u1_ports) > 50e6
    # Samples arrive at least every 2 s per port.
    first_port = next(iter(u1_ports))
    times = sorted(m.ts for m in on_links if (m.dpid, m.port_no) == first_port)
    assert len(times) >= 3 and max(b - a for a, b in zip(times, times[1:])) <= 2.5

    # Nothing of the network is left: no bridge, no host shell.
    assert not (bridges() & switch_names)
    assert not [p for p in host_pids if os.path.exists(f"/proc/{p}")]
