"""MEC metro topology: cells of user hosts -> access switches -> aggregation switches with MEC servers -> core -> cloud.

    cloud -- core1 --+-- agg1 (mec1) --+-- acc1 (cell c1: u1)      link capacities (Mbit/s, metadata; enforced
                     |     |           +-- acc2 (cell c2: u2)      only when the network is built with shaping):
                     |     | (ring)                                core-cloud 1000, core1-agg1 20 (agg1's thin
                     +-- agg2 (mec2) --+-- acc3 (cell c3: u3)      uplink), core1-agg2 1000, agg1-agg2 1000,
                                       +-- acc4 (cell c4: u4)      agg-acc 500, host links 100 (MEC hosts 1000)

agg1 has two ways to the cloud: its own uplink to core1 (the shortest) and the aggregation ring through agg2, so TE
has somewhere to move a flow when agg1's uplink runs hot and an operator can take that uplink out of service. The
uplink's capacity is small because the emulated traffic is (userspace OVS on a few shared cores carries tens of
Mbit/s): the demo's UK backbone replay toward u1 (30 Mbit/s at its peak) crosses it and pushes it past TE's threshold.

The ring is a loop: the forwarding app (netgpt.controller.shortest_path) never floods between switches (proxy ARP,
edge ports only) and installs loop-free per-pair paths, so no spanning tree is needed. The ring link is added last so
the other links keep their port numbers. Hosts get 10.0.0.x addresses and MACs derived from them.
"""
from mininet.topo import Topo


class MecTopo(Topo):
    CELLS = {"c1": ("acc1", "u1"), "c2": ("acc2", "u2"), "c3": ("acc3", "u3"), "c4": ("acc4", "u4")}
    MEC_NODES = {"mec1": "agg1", "mec2": "agg2"}
    UPLINK_MBPS = {"agg1": 20}  # agg -> core capacity where it is not 1000

    def build(self, users_per_cell: int = 1):
        dpid = iter(range(1, 100))
        sw = lambda name: self.addSwitch(name, dpid=f"{next(dpid):016x}")  # noqa: E731
        core = sw("core1")
        cloud = self.addHost("cloud", ip="10.0.0.100/24")
        self.addLink(cloud, core, bw=1000)
        aggs = {}
        for i, (mec, agg_name) in enumerate(self.MEC_NODES.items(), start=1):
            aggs[agg_name] = sw(agg_name)
            self.addLink(aggs[agg_name], core, bw=self.UPLINK_MBPS.get(agg_name, 1000))
            self.addLink(self.addHost(mec, ip=f"10.0.0.{50 + i}/24"), aggs[agg_name], bw=1000)
        for i, (cell, (acc_name, user)) in enumerate(self.CELLS.items(), start=1):
            acc = sw(acc_name)
            self.addLink(acc, aggs["agg1" if i <= 2 else "agg2"], bw=500)
            for j in range(users_per_cell):
                name = user if j == 0 else f"{user}{chr(ord('a') + j)}"
                self.addLink(self.addHost(name, ip=f"10.0.0.{10 * i + j}/24", cell=cell), acc, bw=100)
        self.addLink(aggs["agg1"], aggs["agg2"], bw=1000)  # the aggregation ring: agg1's second way to the cloud
