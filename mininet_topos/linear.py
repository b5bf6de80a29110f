"""The smallest useful topology: n switches in a line, one host on each."""
from mininet.topo import Topo


class LinearTopo(Topo):
    def build(self, n: int = 3):
        prev = None
        for i in range(1, n + 1):
            s = self.addSwitch(f"lin{i}", dpid=f"{i:016x}")
            self.addLink(self.addHost(f"h{i}", ip=f"10.0.0.{i}/24"), s, bw=1000)
            if prev:
                self.addLink(prev, s, bw=1000)
            prev = s
