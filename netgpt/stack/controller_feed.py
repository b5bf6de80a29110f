"""The controller feed: what an emulated network tells the controller through Redis, next to the runner that builds it
(netgpt.stack.network). Topologies themselves (netgpt.mininet_topos) know nothing of Redis."""
from __future__ import annotations

import json
import time

from mininet.net import Mininet
from mininet.node import OVSSwitch

from netgpt.core.bus import Keys
from netgpt.stack.network import NetworkError, busiest_switch, cell_ports, link_capacities


def wait_discovered(r, net: Mininet, timeout_s: float = 30.0) -> dict:
    """Wait until the controller's topology view (Redis netgpt:topology) has every switch and inter-switch link."""
    want_switches = {int(sw.dpid, 16) for sw in net.switches}
    want_links = 2 * sum(isinstance(l.intf1.node, OVSSwitch) and isinstance(l.intf2.node, OVSSwitch)
                         for l in net.links)
    deadline, view = time.monotonic() + timeout_s, {}
    while time.monotonic() < deadline:
        view = json.loads(r.get(Keys.TOPOLOGY) or "{}")
        if want_switches <= set(view.get("switches", [])) and len(view.get("links", [])) >= want_links:
            return view
        time.sleep(0.5)
    raise NetworkError(f"controller discovered {len(view.get('links', []))}/{want_links} links in {timeout_s:.0f} s")


def carrier_link(r, net: Mininet, src_switch: str, next_switches: list[str], seconds: float = 2.0
                 ) -> tuple[int, int, int]:
    """(src dpid, its port, next dpid) of the link from `src_switch` to whichever of `next_switches` sent the most bytes
    over the next `seconds`: where the controller put a running flow, numbered as in its topology view (the port a
    forecast of that link names)."""
    nxt = busiest_switch(net, next_switches, seconds)
    src, dst = int(net.get(src_switch).dpid, 16), int(net.get(nxt).dpid, 16)
    links = json.loads(r.get(Keys.TOPOLOGY))["links"]
    return src, next(l["port"] for l in links if l["src"] == src and l["dst"] == dst), dst


def publish_cells(r, net: Mininet) -> dict[str, list[tuple[int, int]]]:
    """Tell the controller and the intent layer what the topology knows and OpenFlow does not: which access ports form
    each cell (Redis hash netgpt:cells), link capacities (netgpt:link_capacity), the hosts by name with their address
    and access port (netgpt:hosts) and the switches by name (netgpt:switches), so that an operator can say "u1",
    "cell 2" or "agg1"."""
    cells, caps = cell_ports(net), link_capacities(net)
    r.delete(Keys.CELLS, Keys.LINK_CAPACITY, Keys.HOSTS, Keys.SWITCHES)
    if cells:
        r.hset(Keys.CELLS, mapping={c: json.dumps(p) for c, p in cells.items()})
    if caps:
        r.hset(Keys.LINK_CAPACITY, mapping=caps)
    hosts = host_records(net)
    if hosts:
        r.hset(Keys.HOSTS, mapping={name: json.dumps(h) for name, h in hosts.items()})
    if net.switches:
        r.hset(Keys.SWITCHES, mapping={sw.name: int(sw.dpid, 16) for sw in net.switches})
    return cells


def host_records(net: Mininet) -> dict[str, dict]:
    """host name -> {"ip", "mac", "cell", "dpid", "port"} of its access switch port."""
    out = {}
    for host in net.hosts:
        intf = host.defaultIntf()
        if intf is None or intf.link is None:
            continue
        peer = intf.link.intf2 if intf.link.intf1 is intf else intf.link.intf1
        if not isinstance(peer.node, OVSSwitch):
            continue
        out[host.name] = {"ip": host.IP(), "mac": host.MAC(), "cell": host.params.get("cell"),
                          "dpid": int(peer.node.dpid, 16), "port": peer.node.ports[peer]}
    return out
