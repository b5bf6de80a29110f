"""Traffic-engineering test bed: two equal 100 Mbit/s paths between an ingress and an egress switch.

    srv1..srv3 -- te1 ==(te2)== te4 -- usr1..usr3        te1-te2-te4: upper path, 100 Mbit/s a link
                      \\=(te3)=/                        te1-te3-te4: lower path, 100 Mbit/s a link
Host links are 1000 Mbit/s, so the two middle paths are the bottlenecks. Capacities are enforced (tc htb) when the
network is built with shaping; the TE benchmark does so.
"""
from mininet.topo import Topo


class DiamondTopo(Topo):
    def build(self, pairs: int = 3, capacity_mbps: float = 100):
        s = {i: self.addSwitch(f"te{i}", dpid=f"{0x200 + i:016x}") for i in range(1, 5)}
        for a, b in ((1, 2), (2, 4), (1, 3), (3, 4)):
            self.addLink(s[a], s[b], bw=capacity_mbps)
        for i in range(1, pairs + 1):
            self.addLink(self.addHost(f"srv{i}", ip=f"10.2.0.{i}/24"), s[1], bw=1000)
            self.addLink(self.addHost(f"usr{i}", ip=f"10.2.0.{100 + i}/24", cell=f"c{i}"), s[4], bw=1000)
