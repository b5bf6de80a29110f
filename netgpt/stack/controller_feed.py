"""The controller feed: what an emulated network tells the controller through Redis, next to the runner that builds it
(netgpt.stack.network). Topologies themselves (netgpt.mininet_topos) know nothing of Redis."""
from __future__ import annotations

import json
import time

from mininet.net import Mininet
from mininet.node import OVSSwitch

from netgpt.core.bus import Keys
from netgpt.stack.network import NetworkError, cell_ports, link_capacities


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


def publish_cells(r, net: Mininet) -> dict[str, list[tuple[int, int]]]:
    """Tell the controller what the topology knows and OpenFlow does not: which access ports form each cell (Redis
    hash netgpt:cells) and link capacities (netgpt:link_capacity)."""
    cells, caps = cell_ports(net), link_capacities(net)
    r.delete(Keys.CELLS, Keys.LINK_CAPACITY)
    if cells:
        r.hset(Keys.CELLS, mapping={c: json.dumps(p) for c, p in cells.items()})
    if caps:
        r.hset(Keys.LINK_CAPACITY, mapping=caps)
    return cells
