"""MEC topologies on real Open vSwitch (userspace datapath), selectable by name. Plain Mininet topologies: they know nothing
of Redis or of the controller (netgpt.stack runs them and tells the controller what it needs)."""
from netgpt.mininet_topos.diamond import DiamondTopo
from netgpt.mininet_topos.linear import LinearTopo
from netgpt.mininet_topos.mec import MecTopo
from netgpt.mininet_topos.zoo import AbileneTopo, ZooTopo

TOPOLOGIES = {"mec": MecTopo, "linear": LinearTopo, "abilene": AbileneTopo, "zoo": ZooTopo, "diamond": DiamondTopo}


def make_topo(name: str, **params):
    if name not in TOPOLOGIES:
        raise ValueError(f"unknown topology {name!r}; choose one of {', '.join(sorted(TOPOLOGIES))}")
    return TOPOLOGIES[name](**params)
