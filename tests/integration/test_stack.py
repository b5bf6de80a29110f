"""The foundation end to end on real parts: redis-server, Open vSwitch (userspace), ryu-manager with the NetGPT
learning switch and monitor, a 7-switch MEC topology in Mininet, TCP iperf, and telemetry read back from Redis."""
import os
import re
import time

import httpx
import pytest

from netgpt.core import bus
from netgpt.core.messages import CellStats, PortStats

pytestmark = pytest.mark.integration


def test_mec_topology_ping_iperf_and_telemetry(stack):
    from netgpt.stack.network import bridges, iperf, port_links, running_network
    from netgpt.stack.controller_feed import publish_cells, wait_discovered

    host_pids = []
    with running_network("mec", stack.ofp_port) as net:
        host_pids = [h.pid for h in net.hosts]
        switch_names = {sw.name for sw in net.switches}
        assert len(switch_names) >= 3
        wait_discovered(bus.connect(stack), net)
        cells = publish_cells(bus.connect(stack), net)
        assert set(cells) == {"c1", "c2", "c3", "c4"}
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

    # Inter-switch ports carry the link they belong to; cell c1's uplink saw the iperf flow.
    assert {m.link for m in on_links if m.link} >= {"1-2", "2-4"}  # core1-agg1, agg1-acc1 by dpid
    cell_stats = [m for _, m in bus.read_range(r, bus.Streams.TELEMETRY) if isinstance(m, CellStats)]
    assert {m.cell for m in cell_stats} == {"c1", "c2", "c3", "c4"}
    assert max(m.uplink_bps for m in cell_stats if m.cell == "c1") > 50e6
    assert max(m.uplink_bps for m in cell_stats if m.cell == "c2") < 5e6

    # Nothing of the network is left: no bridge, no host shell.
    assert not (bridges() & switch_names)
    assert not [p for p in host_pids if os.path.exists(f"/proc/{p}")]


def test_topology_zoo_abilene_with_loops_pings_over_shortest_paths(stack):
    """Abilene (11 nodes, 14 links, with cycles): no flooding storm, every pair reachable, paths are shortest."""
    import networkx as nx

    from netgpt.stack.network import running_network

    from netgpt.stack.controller_feed import wait_discovered

    with running_network("abilene", stack.ofp_port) as net:
        view = wait_discovered(bus.connect(stack), net)
        assert net.pingAll(timeout=2) == 0.0
        # The operator's status API serves the same view, and rejects a bad query with a reason.
        api = f"http://127.0.0.1:{stack.ryu_api_port}/netgpt"
        served = httpx.get(f"{api}/topology", timeout=5).json()
        assert set(served["switches"]) == set(view["switches"]) and len(served["hosts"]) == 11
        bad = httpx.get(f"{api}/telemetry?n=abc", timeout=5)
        assert bad.status_code == 400 and "integer" in bad.json()["error"]
        assert httpx.get(f"{api}/telemetry?n=5", timeout=5).json()
        # The controller's graph equals the topology's switch graph.
        g = nx.Graph((l["src"], l["dst"]) for l in view["links"])
        assert g.number_of_nodes() == 11 and g.number_of_edges() == 14 and nx.cycle_basis(g)
        # No storm: packets sent to the controller (table-miss hits) stay in the hundreds for 110 pings; a broadcast
        # loop would push them into the hundreds of thousands within a second.
        misses = 0
        for sw in net.switches:
            out = sw.cmd(f"ovs-ofctl -O OpenFlow13 dump-flows {sw.name}")
            misses += sum(int(n) for n in re.findall(r"n_packets=(\d+),.* priority=0 actions", out))
        assert 0 < misses < 5000, misses
        # Forwarding flows were installed per destination (eth_dst, shown as dl_dst by ovs-ofctl).
        assert "dl_dst" in net.switches[0].cmd(f"ovs-ofctl -O OpenFlow13 dump-flows {net.switches[0].name}")


def test_a_network_killed_by_sigterm_still_cleans_up(stack, tmp_path):
    """A timeout or a CI job that ends sends SIGTERM: the teardown must still run."""
    import signal
    import subprocess
    import sys

    from netgpt.stack.network import bridges

    script = tmp_path / "hold.py"
    script.write_text(
        "import sys, time\n"
        "from netgpt.stack.network import running_network\n"
        f"with running_network('linear', {stack.ofp_port}) as net:\n"
        "    print('up', *[h.pid for h in net.hosts], flush=True)\n"
        "    time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    words = proc.stdout.readline().split()
    assert words and words[0] == "up", words
    assert {"lin1", "lin2", "lin3"} <= bridges()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert not ({"lin1", "lin2", "lin3"} & bridges())
    assert not [p for p in words[1:] if os.path.exists(f"/proc/{p}")]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert not re.search(r": lin\d", links)
