"""ECMP forwarding on real OVS (te_mode "ecmp"): every host pair answers, the ingress and egress switches of the
diamond hold one shared SELECT group over their two middle ports, and UDP flows between several host pairs are
spread by the switch's hash over both middle switches (read from their port counters; the group's bucket counters and
the datapath flows are printed)."""
import re
import subprocess
import time

import pytest

from netgpt.core import bus
from tests.integration.conftest import running_stack

pytestmark = pytest.mark.integration

# Open vSwitch 3.1's default select method is dp_hash over a *symmetric* L3/L4 hash, hash(sym_l4(0)) in the datapath
# flows: it hashes nw_src XOR nw_dst and leaves UDP ports out. srv_i (10.2.0.i) and usr_i (10.2.0.100+i) XOR to 100
# for every i, so UDP between srv_i and usr_i always takes one bucket (seen: all recirculated flows had the same
# dp_hash). srv_i -> usr_j XORs to 100 + (i ^ j): four different hashes over the nine pairs.
PAIRS = [(i, j) for i in (1, 2, 3) for j in (1, 2, 3)]


def _port_to(net, a: str, b: str) -> int:
    """a's OpenFlow port number on its link to b."""
    (intf, _), = net.get(a).connectionsTo(net.get(b))
    return net.get(a).ports[intf]


def _select_groups(sw) -> list[tuple[str, list[int]]]:
    """(group id, bucket output ports) of every select group on the switch."""
    out = sw.cmd(f"ovs-ofctl -O OpenFlow13 --no-names dump-groups {sw.name}")
    return [(gid, [int(p) for p in re.findall(r"output:(\d+)", rest)])
            for gid, rest in re.findall(r"group_id=(\d+),type=select,(.*)", out)]


def _udp_flows(net, seconds: int, mbps: int) -> None:
    """One UDP flow srv_i -> usr_j for each of PAIRS, all at once (usr_j listens on port 5400 + i); iperf started and
    stopped by PID."""
    servers = [net.get(f"usr{j}").popen(["iperf", "-s", "-u", "-p", str(5400 + i)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL) for i, j in PAIRS]
    time.sleep(0.5)
    clients = [net.get(f"srv{i}").popen(["iperf", "-c", net.get(f"usr{j}").IP(), "-u", "-p", str(5400 + i), "-b",
                                         f"{mbps}M", "-l", "1200", "-t", str(seconds)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i, j in PAIRS]
    try:
        for c in clients:
            c.wait(timeout=seconds + 20)
    finally:
        for p in clients + servers:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=5)


def test_ecmp_spreads_pairs_over_both_middle_switches(tmp_path_factory):
    from netgpt.stack.controller_feed import wait_discovered
    from netgpt.stack.network import running_network, switch_tx_bytes

    with running_stack(tmp_path_factory, te_mode="ecmp") as s:
        r = bus.connect(s)
        with running_network("diamond", s.ofp_port) as net:
            wait_discovered(r, net)
            assert net.pingAll(timeout=2) == 0.0

            te1, te4 = net.get("te1"), net.get("te4")
            groups = {sw.name: _select_groups(sw) for sw in (te1, te4)}
            print(f"select groups: {groups}")
            # One group per fork, shared by every pair that forks there, over the ports to both middle switches.
            assert [sorted(ports) for _, ports in groups["te1"]] == [sorted([_port_to(net, "te1", "te2"),
                                                                           _port_to(net, "te1", "te3")])]
            assert [sorted(ports) for _, ports in groups["te4"]] == [sorted([_port_to(net, "te4", "te2"),
                                                                           _port_to(net, "te4", "te3")])]
            gid = groups["te1"][0][0]
            flows = te1.cmd("ovs-ofctl -O OpenFlow13 --no-names dump-flows te1 table=1")
            for i in (1, 2, 3):  # each server -> user pair's entry at the ingress points to the group
                src, dst = net.get(f"srv{i}").MAC(), net.get(f"usr{i}").MAC()
                assert re.search(rf"dl_src={src},dl_dst={dst} actions=group:{gid}\b", flows), flows

            middle = [net.get("te2"), net.get("te3")]
            before = [switch_tx_bytes(sw) for sw in middle]
            _udp_flows(net, seconds=3, mbps=4)
            carried = [switch_tx_bytes(sw) - b for sw, b in zip(middle, before)]
            print(f"bytes sent by te2, te3 during nine 4 Mbit/s x 3 s UDP flows (srv_i -> usr_j): {carried}")
            # What the switch did with them: per-bucket counters, and the datapath flows (a dp_hash select shows a
            # hash() action and recirculated flows matching dp_hash).
            print(te1.cmd("ovs-ofctl -O OpenFlow13 --no-names dump-group-stats te1"))
            print(te1.cmd("ovs-appctl dpctl/dump-flows | grep -E 'hash|recirc' | head -20"))
            # Nine flows of ~1.5 MB each: on one path (static) the other middle switch would carry ~0 (LLDP only).
            # Both carry at least one whole flow's worth.
            assert min(carried) > 1_000_000, carried
