"""Compile: an understood intent + what the network is -> the controller instructions (OperatorIntent), checked.

As in ONOS, compiling is where names become network objects: "u1" becomes its address and access switch port, "cell 2"
its access ports, "s2-s3" two datapath ids, and a traffic class its server ports (CLASS_PORTS). The controller then
only installs what it is given. High-level traffic intents become OpenFlow entries in the policy table (table 0,
before forwarding in table 1):

    block        the selected traffic: empty actions, priority 300
    rate_limit   a meter (drop band) on the switch, then forwarding; priority 200; `params.rate_kbps`
    prioritize   DSCP EF (46) marked, then forwarding; priority 150
    reserve_bandwidth  DSCP AF41 (34) marked, then forwarding, priority 150; the rate is recorded, not enforced (the
                 userspace datapath here has no queues to guarantee it; see the issue note)

Where the traffic is selected (first that applies): a source host at its access switch (ipv4_src), the cells' access
ports (uplink by in_port, downlink by the hosts' MACs), a destination host at its access switch (ipv4_dst), or every
access port ("network"). A class adds its transport ports (server side: the destination port uplink, the source
port downlink). avoid_link and allocate_compute compile to the controller's own actions (compute goes to cells, the
whole network being every cell; a user or a traffic class alone is refused, not left out). Every name is checked against
the network view first: an unknown host, cell, switch, link or MEC node is an IntentError(unknown_entity) and nothing
is sent.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from netgpt.core import bus
from netgpt.core.messages import HighLevelIntent, OperatorIntent
from netgpt.intent.conflicts import classify_conflict
from netgpt.intent.errors import IntentError

POLICY_TABLE, FORWARD_TABLE = 0, 1
PRIORITY = {"block": 300, "rate_limit": 200, "prioritize": 150, "reserve_bandwidth": 150}
DSCP = {"prioritize": 46, "reserve_bandwidth": 34}
# A traffic class in this emulation is its servers' well-known ports (a deployment would use DPI or the edge agents'
# user-intent announcements): (ip_proto, port) pairs.
CLASS_PORTS = {
    "video_streaming": [(6, 5004), (17, 5004)],
    "voice_video_call": [(17, 5060), (6, 5060)],
    "gaming": [(17, 3074), (6, 3074)],
    "ar_vr": [(17, 5005)],
    "navigation": [(6, 5006)],
    "web_chat": [(6, 80), (6, 443)],
    "file_transfer": [(6, 21), (6, 5001)],
}
L4 = {6: "tcp", 17: "udp"}


@dataclass
class NetworkView:
    """What compiling needs to know of the network, read from Redis (written by the stack and the controller).

    Where a host is has one source of truth: the controller's topology (Redis netgpt:topology "hosts", MAC ->
    [dpid, port], which the forwarding app learns from the host's packets, so it follows a host that moves). The
    stack's inventory (netgpt:hosts: name, address, MAC) also gives the port the host was built on; that is used only
    until the controller has seen the host. A host's cell is not a fact of its own either: it is the cell whose
    access ports (netgpt:cells) hold its port, or, for a port no cell lists (a user that attached to another port of
    a cell's access switch), the one cell whose access ports are all on that switch; else none. A host whose switch
    is not in the controller's topology is absent (not attached now), as is a cell none of whose access switches is.
    """

    hosts: dict[str, dict] = field(default_factory=dict)  # name -> {"ip", "mac", "cell", "dpid", "port"}
    cells: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # cell -> access ports
    switches: dict[str, int] = field(default_factory=dict)  # name -> dpid ("s4" for dpid 4 always works)
    dpids: set[int] = field(default_factory=set)
    links: set[tuple[int, int]] = field(default_factory=set)
    nodes: set[str] = field(default_factory=set)  # live MEC nodes
    absent: dict[str, str] = field(default_factory=dict)  # host or cell name -> why it is not in the network now

    @classmethod
    def from_redis(cls, r, nodes: bool = True) -> "NetworkView":
        topo = json.loads(r.get(bus.Keys.TOPOLOGY) or "{}")
        view = cls(switches={k: int(v) for k, v in r.hgetall(bus.Keys.SWITCHES).items()},
                   dpids=set(topo.get("switches", [])),
                   links={(link["src"], link["dst"]) for link in topo.get("links", [])},
                   nodes=set(bus.live_agents(r)) if nodes else set())
        inter_switch = {(link["src"], link["port"]) for link in topo.get("links", []) if "port" in link}
        learned = {mac: tuple(loc) for mac, loc in topo.get("hosts", {}).items()
                   if tuple(loc) not in inter_switch}  # a port that turned out to be a link's is no host's
        view._locate({k: json.loads(v) for k, v in r.hgetall(bus.Keys.HOSTS).items()},
                     {k: [tuple(p) for p in json.loads(v)] for k, v in r.hgetall(bus.Keys.CELLS).items()}, learned)
        return view

    def _locate(self, inventory: dict[str, dict], cells: dict[str, list[tuple[int, int]]],
                learned: dict[str, tuple[int, int]]) -> None:
        """Hosts where the controller last saw them, their cells from their ports, and what is absent."""
        live = (lambda dpid: dpid in self.dpids) if self.dpids else (lambda dpid: True)  # no topology yet: no test
        by_port = {tuple(p): c for c, ports in cells.items() for p in ports}
        by_switch: dict[int, set[str]] = {}
        for c, ports in cells.items():
            for d, _ in ports:
                by_switch.setdefault(d, set()).add(c)
        self.cells = {c: [p for p in ports if live(p[0])] for c, ports in cells.items()}
        for name, h in inventory.items():
            dpid, port = learned.get(h.get("mac"), (h.get("dpid"), h.get("port")))
            if not live(dpid):
                self.absent[name] = f"host {name!r} is not attached to the network now (switch {dpid} is not " \
                                    "connected)"
                continue
            cell = by_port.get((dpid, port))
            if cell is None and len(by_switch.get(dpid, ())) == 1:
                cell = next(iter(by_switch[dpid]))
                self.cells[cell].append((dpid, port))
            self.hosts[name] = {**h, "dpid": dpid, "port": port, "cell": cell}
        for c in [c for c, ports in self.cells.items() if not ports]:
            del self.cells[c]
            self.absent[c] = f"cell {c!r} has no access switch in the network now"

    def dpid(self, name: str) -> int:
        if name in self.switches:
            return self.switches[name]
        if name.startswith("s") and name[1:].isdigit() and int(name[1:]) in self.dpids:
            return int(name[1:])
        raise IntentError("unknown_entity", f"the network has no switch {name!r}", field="link")

    def host(self, name: str) -> dict:
        for h in self.hosts.values():  # an address names its host too
            if h.get("ip") == name:
                return h
        if name not in self.hosts:
            raise IntentError("unknown_entity", self.absent.get(name, f"the network has no host {name!r}"),
                              field="src")
        return self.hosts[name]

    def cell_ports(self, cell: str) -> list[tuple[int, int]]:
        if cell not in self.cells:
            raise IntentError("unknown_entity", self.absent.get(cell, f"the network has no cell {cell!r}"),
                              field="scope")
        return self.cells[cell]

    def locations(self) -> dict[str, tuple]:
        """What a compiled traffic intent depends on, to notice a change: host -> (dpid, port, cell), cell -> its
        access ports, absent names, and the switches."""
        out: dict[str, tuple] = {name: (h["dpid"], h["port"], h["cell"]) for name, h in self.hosts.items()}
        out.update({f"cell {c}": tuple(sorted(p)) for c, p in self.cells.items()})
        out.update({name: ("absent",) for name in self.absent})
        out["switches"] = tuple(sorted(self.dpids))
        return out


def compile_intent(intent: HighLevelIntent, view: NetworkView, intent_id: str, text: str = "",
                   now: float | None = None) -> OperatorIntent:
    """The controller instruction for one high-level intent (not for queries or allow: the service handles those)."""
    now = time.time() if now is None else now
    a = intent.action.value
    expires = now + intent.duration_min * 60 if intent.duration_min else None
    starts = None
    if intent.window is not None:
        starts, end = _window(intent.window, now)
        expires = min(x for x in (expires, end) if x is not None) if end or expires else None
    params = {"starts_ts": starts} if starts is not None else {}
    common = dict(intent_id=intent_id, text=text, expires_ts=expires, source="intent")
    if a == "avoid_link":
        x, y = (view.dpid(n) for n in intent.link)
        if (x, y) not in view.links and (y, x) not in view.links:
            raise IntentError("unknown_entity", f"there is no link between {intent.link[0]} and {intent.link[1]}",
                              field="link")
        return OperatorIntent(action="avoid_link", params={"link": f"{x}-{y}", **params}, **common)
    if a == "allocate_compute":
        if intent.node not in view.nodes:
            raise IntentError("unknown_entity", f"MEC node {intent.node!r} is not alive (no heartbeat)", field="node")
        # a MEC node serves every edge LLM session of the cells pinned to it: compute goes to cells, not to a user
        # or a traffic class alone, which would otherwise be left out silently
        cells = intent.scope if isinstance(intent.scope, list) else sorted(view.cells) if intent.scope else []
        others = [c for c in cells if not re.fullmatch(r"c\d+", c)]
        if others or not cells or intent.traffic_class:
            what = (", ".join(others) if others else intent.traffic_class.value if intent.traffic_class else
                    "no cell")
            raise IntentError("invalid", f"compute is allocated per cell here (a MEC node serves all the sessions of "
                              f"the cells pinned to it), not for {what}", field="scope",
                              question=f"Which cells should {intent.node} serve?")
        for c in cells:
            view.cell_ports(c)
        return OperatorIntent(action="allocate", selector={"cells": cells}, params={"node_id": intent.node, **params},
                              **common)
    if a in PRIORITY:
        if intent.link:  # a link is avoided, never a place where traffic entries go: refused rather than left out
            name = "-".join(intent.link)
            raise IntentError("invalid", f"{a} on link {name} is not compiled: this network marks, caps or blocks "
                              "traffic at its access switches, whatever links it crosses", field="link",
                              question="For which traffic (a class, cells, a source or a destination)?")
        flows = traffic_flows(intent, view)
        if a == "rate_limit":
            params["rate_kbps"] = max(1, round(intent.rate_mbps * 1000))
        if a == "reserve_bandwidth":
            params["reserved_mbps"] = intent.rate_mbps
        action = {"reserve_bandwidth": "prioritize"}.get(a, a)
        return OperatorIntent(action=action, flows=flows, params=params, priority=PRIORITY[a], **common)
    raise IntentError("invalid", f"{a} is not compiled to network changes", field="action")


def traffic_flows(intent: HighLevelIntent, view: NetworkView) -> list[dict]:
    """ofctl entries (table 0) selecting the intent's traffic, with the action's instructions."""
    a = intent.action.value
    classes = CLASS_PORTS.get(intent.traffic_class.value, []) if intent.traffic_class else []
    ends = [(None, None)] if not classes else [(proto, port) for proto, port in classes]
    selectors: list[tuple[int, dict, str]] = []  # (dpid, match, direction: up = from the users, down = to them)
    dst = view.host(intent.dst) if intent.dst else None
    if intent.src:
        # At the source's access switch. A source outside every cell (the cloud, a MEC server) is the server side:
        # its class port is the source port ("down"). Cells in the scope narrow it to their users.
        src = view.host(intent.src)
        cells = [c for c in intent.scope if re.fullmatch(r"c\d+", c)] if isinstance(intent.scope, list) else []
        for c in cells:
            view.cell_ports(c)
        dsts = [dst] if dst else [h for h in view.hosts.values() if h.get("cell") in cells] if cells else [None]
        for d in dsts:
            match = {"eth_type": 2048, "ipv4_src": src["ip"], **({"ipv4_dst": d["ip"]} if d else {})}
            selectors.append((src["dpid"], match, "up" if src.get("cell") else "down"))
    elif isinstance(intent.scope, list) or intent.scope == "network":
        cells = intent.scope if isinstance(intent.scope, list) else sorted(view.cells)
        for cell in cells:
            if not cell.startswith("c") or not cell[1:].isdigit():  # a user or host as scope
                h = view.host(cell)
                selectors.append((h["dpid"], {"eth_type": 2048, "ipv4_src": h["ip"]}, "up"))
                continue
            for dpid, port in view.cell_ports(cell):
                extra = {"ipv4_dst": dst["ip"]} if dst else {}
                selectors.append((dpid, {"in_port": port, "eth_type": 2048, **extra}, "up"))
                if a != "block":  # a block of what a cell sends; caps and marks apply both ways
                    for h in view.hosts.values():
                        if (h.get("dpid"), h.get("port")) == (dpid, port):
                            selectors.append((dpid, {"eth_type": 2048, "eth_dst": h["mac"]}, "down"))
    elif dst:
        selectors.append((dst["dpid"], {"eth_type": 2048, "ipv4_dst": dst["ip"]}, "down"))
    else:
        raise IntentError("ambiguous", f"{a} of what traffic?", field="traffic_class",
                          question="Which traffic (a class, cells, a source or a destination)?")
    flows = []
    for dpid, match, direction in selectors:
        for proto, port in ends:
            m = dict(match)
            if proto is not None:
                m["ip_proto"] = proto
                m[f"{L4[proto]}_{'dst' if direction == 'up' else 'src'}"] = port
            flows.append({"dpid": dpid, "table_id": POLICY_TABLE, "priority": PRIORITY[a], "match": m,
                          "actions": _actions(a)})
    return flows


def _actions(a: str) -> list[dict]:
    if a == "block":
        return []
    if a == "rate_limit":  # the controller fills in the switch's meter id
        return [{"type": "METER", "meter_id": 0}, {"type": "GOTO_TABLE", "table_id": FORWARD_TABLE}]
    return [{"type": "SET_FIELD", "field": "ip_dscp", "value": DSCP[a]},
            {"type": "GOTO_TABLE", "table_id": FORWARD_TABLE}]


def _window(window, now: float) -> tuple[float | None, float | None]:
    """Unix times of the window's next start (None: now) and end, in local time."""
    t = datetime.fromtimestamp(now)

    def next_at(hhmm: str) -> datetime:
        h, m = map(int, hhmm.split(":"))
        at = t.replace(hour=h, minute=m, second=0, microsecond=0)
        return at if at > t else at + timedelta(days=1)

    start = next_at(window.start) if window.start else None
    end = next_at(window.end) if window.end else None
    if start is not None and end is not None and end < start:  # inside the window now: it started yesterday
        start = None
    return (start.timestamp() if start else None), (end.timestamp() if end else None)


def compile_flows(flows: list[dict], view: NetworkView, intent_id: str, text: str = "") -> OperatorIntent:
    """A flow-level intent: its entries as written, once every switch they name is one the network has."""
    for f in flows:
        if f["dpid"] not in view.dpids:
            raise IntentError("unknown_entity", f"the network has no switch with dpid {f['dpid']}", field="dpid")
    return OperatorIntent(intent_id=intent_id, text=text, action="flows", flows=flows, source="intent")


def conflicts(new: list[dict], installed: dict[str, list[dict]]) -> list[dict]:
    """Every conflict of the new entries with installed intents' entries and with each other:
    [{"with": intent id or "itself", "type": ..., "installed": entry, "new": entry}]."""
    found = []
    for other_id, entries in installed.items():
        for old in entries:
            for f in new:
                kind = classify_conflict(old, f)
                if kind:
                    found.append({"with": other_id, "type": kind, "installed": old, "new": f})
    for i, f in enumerate(new):
        for g in new[i + 1:]:
            kind = classify_conflict(f, g)
            if kind and kind != "redundancy":
                found.append({"with": "itself", "type": kind, "installed": f, "new": g})
    return found


def is_blocking(conflict: dict) -> bool:
    """The conflicts that refuse an intent (unless forced): those that make a rule dead, unnecessary or its outcome
    undefined. Shadowing hides the installed rule completely; redundancy adds nothing (most often the same intent
    twice); imbrication and correlation at equal priority leave it to the switch which rule applies. Generalization
    (an exception above a general rule) and correlation at different priorities (the higher one wins on the overlap,
    by design, e.g. a block inside a rate cap) are recorded with the intent instead."""
    if conflict["type"] in ("shadowing", "imbrication", "redundancy"):
        return True
    return conflict["type"] == "correlation" and \
        int(conflict["installed"].get("priority", 0)) == int(conflict["new"].get("priority", 0))


def conflict_error(blocking: list[dict]) -> IntentError:
    """The structured refusal of an intent with these blocking conflicts: what submit raises, and what the controller
    records with an intent it refuses for the same reason (delivered, restored, its window begun)."""
    first = blocking[0]
    return IntentError("conflict", f"{first['type']} with {first['with']}: {len(blocking)} conflicting "
                       "entr" + ("y" if len(blocking) == 1 else "ies"), field="flows",
                       question="Withdraw the other intent first, or submit again with force.",
                       options=sorted({f"{c['with']}:{c['type']}" for c in blocking}))
