"""Real topologies from the Internet Topology Zoo, as shipped by the `topohub` package (offline JSON).

Each zoo node becomes a switch `z<i>` with one host `hz<i>` (10.1.x.y); links keep their length in km as metadata
(`dist_km`, usable as a link weight or a propagation delay). Names stay short for Linux interface names.
"""
import json
from importlib.resources import files

from mininet.topo import Topo


def load_zoo(name: str) -> dict:
    path = files("topohub") / "data" / "topozoo" / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"no Topology Zoo topology named {name!r} in topohub")
    return json.loads(path.read_text())


class ZooTopo(Topo):
    def build(self, name: str = "Abilene"):
        graph = load_zoo(name)
        index = {node["id"]: i for i, node in enumerate(graph["nodes"], start=1)}
        for node in graph["nodes"]:
            i = index[node["id"]]
            sw = self.addSwitch(f"z{i}", dpid=f"{0x100 + i:016x}", city=node.get("name", ""))
            self.addLink(self.addHost(f"hz{i}", ip=f"10.1.{i // 250}.{i % 250 + 1}/16"), sw, bw=1000)
        seen = set()
        for edge in graph["edges"]:
            a, b = index[edge["source"]], index[edge["target"]]
            if a == b or (min(a, b), max(a, b)) in seen:
                continue
            seen.add((min(a, b), max(a, b)))
            self.addLink(f"z{a}", f"z{b}", bw=1000, dist_km=float(edge.get("dist", 0.0)))


class AbileneTopo(ZooTopo):
    def build(self):
        super().build("Abilene")
