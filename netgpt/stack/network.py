"""Run a topology on real Open vSwitch (userspace datapath) under a remote Ryu controller, and clean up exactly it.

Never calls Mininet's cleanup (`mn -c`) or its iperf helpers: both `killall -9` by name, machine-wide. iperf is started
here by hand and stopped by PID; teardown deletes only this network's bridges and checks none is left.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Iterator

from mininet.link import Link, TCLink
from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.node import OVSSwitch, RemoteController

from netgpt.mininet_topos import make_topo


class NetworkError(RuntimeError):
    pass


class Controller(RemoteController):
    """RemoteController without Mininet's telnet probe: the probe decodes the OpenFlow HELLO it receives as UTF-8 and
    crashes when the random transaction id is not valid UTF-8. `waitConnected` checks the controller instead."""

    def checkListening(self):
        pass


def require_root() -> str | None:
    """None if Mininet can run here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "Mininet needs root (network namespaces, Open vSwitch bridges)"
    for tool in ("mnexec", "ovs-vsctl", "iperf", "ethtool"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            return f"{tool} is not installed: run scripts/setup.sh"
    return None


def bridges() -> set[str]:
    out = subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True, text=True)
    return set(out.stdout.split())


def _ports(bridge: str) -> list[str]:
    out = subprocess.run(["ovs-vsctl", "--timeout=5", "list-ports", bridge], capture_output=True, text=True)
    return out.stdout.split()


def _has_host(intf: str) -> bool:
    """True if `intf` is a veth whose peer lives in another network namespace (a running Mininet host)."""
    out = subprocess.run(["ip", "-d", "link", "show", intf], capture_output=True, text=True)
    return out.returncode == 0 and "link-netnsid" in out.stdout


def _network_alive(switches: list[str]) -> bool:
    """A network of these switches is running while any of their ports still leads to a host's namespace."""
    return any(_has_host(p) for br in switches for p in _ports(br))


def _remove_leftovers(switches: list[str]) -> None:
    """What a killed run of this topology leaves: its bridges in OVS's database, and root-namespace interfaces named
    after its switches (switch-to-switch veths, the bridges' own devices). Only these names are touched."""
    names = set(switches)
    for br in sorted(names & bridges()):
        subprocess.run(["ovs-vsctl", "--if-exists", "del-br", br], capture_output=True)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    for line in links.splitlines():
        intf = line.split(": ")[1].split("@")[0] if ": " in line else ""
        if intf in names or intf.rsplit("-eth", 1)[0] in names and re.fullmatch(r".+-eth\d+", intf):
            subprocess.run(["ip", "link", "del", intf], capture_output=True)


class _Terminated(Exception):
    pass


def _raise_terminated(signum, frame):
    raise _Terminated(f"signal {signum}")


@contextmanager
def running_network(topo_name: str, ofp_port: int, shape: bool = False, **topo_params) -> Iterator[Mininet]:
    """Start the named topology, connected to the controller on 127.0.0.1:ofp_port; always torn down on exit."""
    reason = require_root()
    if reason:
        raise NetworkError(reason)
    setLogLevel("critical" if shape else "warning")  # tc prints harmless htb quantum warnings as errors
    topo = make_topo(topo_name, **topo_params)
    switches = topo.switches()
    if bridges() & set(switches) and _network_alive(switches):
        raise NetworkError(f"bridges {', '.join(sorted(bridges() & set(switches)))} are in use by another running "
                           "network")
    _remove_leftovers(switches)
    # A SIGTERM (a timeout, a CI job ending) must still run the teardown below.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main_thread else None
    net = None
    try:
        net = Mininet(topo=topo, switch=partial(OVSSwitch, datapath="user", protocols="OpenFlow13"),
                      controller=partial(Controller, ip="127.0.0.1", port=ofp_port),
                      link=TCLink if shape else Link, autoSetMacs=True, build=True, cleanup=False)
        net.start()
        for h in net.hosts:
            # Userspace datapath: TCP stalls unless checksum offload is off on the host side.
            h.cmd(f"ethtool -K {h.name}-eth0 tx off")
        if not net.waitConnected(timeout=30):
            raise NetworkError(f"switches did not connect to the controller on port {ofp_port} within 30 s")
        yield net
    finally:
        try:
            if net is not None:
                net.stop()
        finally:
            _remove_leftovers(switches)
            if main_thread:
                signal.signal(signal.SIGTERM, previous)


def iperf(net: Mininet, client: str, server: str, seconds: float = 3.0, port: int = 5001) -> float:
    """TCP throughput client -> server in Mbit/s as the server received it, with iperf started and stopped by PID.

    The receiver's number, not the sender's: a sender counts what it wrote into its socket, which for a short run
    through a policer includes data still queued when the run ends (measured here: 5.6 Mbit/s "sent" through a
    5 Mbit/s meter)."""
    src, dst = net.get(client), net.get(server)
    srv = dst.popen(["iperf", "-s", "-p", str(port), "-f", "m"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    text=True)
    try:
        # Wait for the server socket before the client starts.
        dst.cmd(f"for i in $(seq 50); do ss -ltn | grep -q ':{port} ' && break; sleep 0.1; done")
        out = src.cmd(f"timeout -s KILL {int(seconds) + 15} iperf -c {dst.IP()} -p {port} -t {seconds} -f m")
        time.sleep(0.5)  # the server prints its report when the connection closes
    finally:
        srv.kill()
        received, _ = srv.communicate(timeout=5)
    rates = re.findall(r"([\d.]+)\s+Mbits/sec", received or "") or re.findall(r"([\d.]+)\s+Mbits/sec", out)
    if not rates:
        raise NetworkError(f"iperf {client}->{server} gave no result: {out.strip()[-200:]}")
    return float(rates[-1])


def switch_tx_bytes(sw) -> int:
    """Bytes sent by all ports of a switch, from OVS's own port counters (independent of the controller's view)."""
    out = sw.cmd(f"ovs-ofctl -O OpenFlow13 dump-ports {sw.name}")
    return sum(int(b) for b in re.findall(r"tx pkts=\S+ bytes=(\d+)", out.replace(",", "")))


def busiest_switch(net: Mininet, names: list[str], seconds: float) -> str:
    """Of the named switches, the one that sent the most bytes over the next `seconds` (which path carries a flow)."""
    before = {n: switch_tx_bytes(net.get(n)) for n in names}
    time.sleep(seconds)
    return max(names, key=lambda n: switch_tx_bytes(net.get(n)) - before[n])


def port_links(net: Mininet) -> dict[tuple[int, int], str]:
    """(dpid, OpenFlow port) -> link name such as 'acc1-agg1' or 'u1-acc1', for every switch port in the network."""
    names: dict[tuple[int, int], str] = {}
    for link in net.links:
        a, b = link.intf1, link.intf2
        name = f"{a.node.name}-{b.node.name}"
        for intf in (a, b):
            if isinstance(intf.node, OVSSwitch):
                names[(int(intf.node.dpid, 16), intf.node.ports[intf])] = name
    return names




def cell_ports(net: Mininet) -> dict[str, list[tuple[int, int]]]:
    """cell -> the (dpid, port) access ports of its user hosts (hosts built with a `cell` parameter)."""
    cells: dict[str, list[tuple[int, int]]] = {}
    for host in net.hosts:
        cell = host.params.get("cell")
        if not cell:
            continue
        intf = host.defaultIntf()
        peer = intf.link.intf2 if intf.link.intf1 is intf else intf.link.intf1
        cells.setdefault(cell, []).append((int(peer.node.dpid, 16), peer.node.ports[peer]))
    return cells


def link_capacities(net: Mininet) -> dict[str, float]:
    """'a-b' (dpids, smaller first) -> capacity in Mbit/s, for inter-switch links whose topology gives `bw`."""
    caps = {}
    for link in net.links:
        a, b = link.intf1.node, link.intf2.node
        bw = net.topo.linkInfo(a.name, b.name).get("bw")
        if isinstance(a, OVSSwitch) and isinstance(b, OVSSwitch) and bw:
            x, y = sorted((int(a.dpid, 16), int(b.dpid, 16)))
            caps[f"{x}-{y}"] = float(bw)
    return caps




# Run inside a host's network namespace (curl is not among the setup script's packages): one request, one JSON line.
HTTP_CLIENT = """import httpx, json, sys
url, body, timeout = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3])
try:
    r = httpx.request("POST" if body else "GET", url, json=body, timeout=timeout)
    print(json.dumps([r.status_code, r.json()]))
except Exception as exc:
    print(json.dumps([0, {"error": str(exc)}]))
"""


def host_http(host, url: str, body: dict | None = None, timeout_s: float = 5) -> tuple[int, dict]:
    """One HTTP request from inside a Mininet host: (status, JSON body); (0, {"error": ...}) if unreachable."""
    script = Path(os.environ.get("TMPDIR", "/tmp")) / f"netgpt-http-client-{os.getpid()}.py"
    script.write_text(HTTP_CLIENT)
    cmd = " ".join(shlex.quote(a) for a in (sys.executable, str(script), url, json.dumps(body), str(timeout_s)))
    lines = host.cmd(cmd).strip().splitlines()
    try:
        status, data = json.loads(lines[-1])
    except (IndexError, ValueError):
        return 0, {"error": "\n".join(lines[-5:])}
    return status, data


def wait_host_http(host, url: str, timeout_s: float) -> dict:
    """Poll a URL from inside a host until it answers 200; its JSON body."""
    deadline = time.monotonic() + timeout_s
    data: dict = {}
    while time.monotonic() < deadline:
        status, data = host_http(host, url, timeout_s=2)
        if status == 200:
            return data
        time.sleep(1)
    raise NetworkError(f"{url} not healthy from {host.name} in {timeout_s} s: {data}")
