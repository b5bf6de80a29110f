"""`make demo`: the whole loop as it stands today, end to end on real parts, then a short summary.

Stack up (redis-server, Open vSwitch, ryu-manager with the NetGPT apps) -> MEC topology on OVS -> pingall -> TCP load
while live per-link rates are read back from the controller's Redis telemetry stream -> everything torn down by PID.
"""
from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field

from rich.console import Console
from rich.live import Live
from rich.table import Table

from netgpt.core import bus
from netgpt.core.settings import Settings
from netgpt.demo.edge import run_edge_loop
from netgpt.stack import services
from netgpt.stack.controller_feed import publish_cells, wait_discovered
from netgpt.stack.network import NetworkError, bridges, iperf, port_links, require_root, running_network


@dataclass
class DemoReport:
    topology: str = ""
    switches: int = 0
    hosts: int = 0
    ping_loss_pct: float | None = None
    iperf_mbps: float | None = None
    telemetry_entries: int = 0
    busiest_link: str = ""
    busiest_link_mbps: float = 0.0
    started: list[str] = field(default_factory=list)
    leftover_bridges: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""
    edge: object = None  # netgpt.demo.edge.EdgeReport when the edge loop ran


def _rates_table(rates: dict[str, float], top: int = 10) -> Table:
    table = Table("link / cell", "rate (Mbit/s)", title="live rates from Redis (netgpt:telemetry)")
    for name, bps in sorted(rates.items(), key=lambda kv: -kv[1])[:top]:
        table.add_row(name, f"{bps / 1e6:8.1f}")
    return table


def watch_link_rates(r, links: dict[tuple[int, int], str], seconds: float, live: Live | None,
                     start_id: str = "$") -> tuple[dict[str, float], dict[str, float], int]:
    """Follow the telemetry stream for `seconds`: latest and peak rate per link (max of both ends' tx), entries read."""
    latest: dict[str, float] = {}
    peak: dict[str, float] = {}
    last_id, entries = start_id, 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reply = r.xread({bus.Streams.TELEMETRY: last_id}, count=1000, block=500)
        for _stream, items in reply or []:
            for entry_id, fields in items:
                last_id, entries = entry_id, entries + 1
                try:
                    msg = bus.decode_entry(fields)
                except ValueError:
                    continue
                if msg.kind == "cell_stats":
                    name, bps = f"cell {msg.cell}", max(msg.uplink_bps, msg.downlink_bps)
                elif msg.kind == "port_stats" and (msg.dpid, msg.port_no) in links:
                    name, bps = links[(msg.dpid, msg.port_no)], max(msg.tx_bps, msg.rx_bps)
                else:
                    continue
                latest[name] = bps
                peak[name] = max(peak.get(name, 0.0), latest[name])
        if live is not None:
            live.update(_rates_table(latest))
    return latest, peak, entries


def run(s: Settings, topo_name: str = "mec", live_seconds: float = 8.0, console: Console | None = None,
        edge: bool = True) -> int:
    console = console or Console()
    report = DemoReport(topology=topo_name)
    t0 = time.monotonic()
    reason = require_root()
    if reason:
        console.print(f"[red]demo needs:[/] {reason}")
        return 2
    try:
        report.started = services.up(s, log=lambda m: console.print(m, highlight=False))
    except services.ServiceError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 1
    r = bus.connect(s)
    switch_names: list[str] = []
    try:
        with running_network(topo_name, s.ofp_port) as net:
            switch_names = [sw.name for sw in net.switches]
            wait_discovered(r, net)
            publish_cells(r, net)
            report.switches, report.hosts = len(net.switches), len(net.hosts)
            console.print(f"topology [bold]{topo_name}[/]: {report.switches} switches, {report.hosts} hosts")
            report.ping_loss_pct = net.pingAll(timeout=2)
            console.print(f"pingall: {report.ping_loss_pct:.0f}% loss")
            src, dst = ("u1", "cloud") if topo_name == "mec" else (net.hosts[0].name, net.hosts[-1].name)
            report.iperf_mbps = iperf(net, src, dst, seconds=3)
            console.print(f"iperf {src} -> {dst}: {report.iperf_mbps:.0f} Mbit/s")
            # Background load for the live view: two flows across the core, stopped by PID.
            loads = _start_load(net, [("u1", "cloud"), ("u3", "mec1")] if topo_name == "mec" else [(src, dst)],
                                live_seconds)
            try:
                with Live(_rates_table({}), console=console, refresh_per_second=2) as live:
                    _, peak, report.telemetry_entries = watch_link_rates(r, port_links(net), live_seconds, live)
            finally:
                for p in loads:
                    services.stop_child(p, timeout_s=5)
            link_peaks = {k: v for k, v in peak.items() if not k.startswith("cell ")}
            if link_peaks:
                report.busiest_link, bps = max(link_peaks.items(), key=lambda kv: kv[1])
                report.busiest_link_mbps = bps / 1e6
            if edge and topo_name == "mec":
                report.edge = run_edge_loop(net, s, lambda m: console.print(m, highlight=False),
                                            s.run_dir / "demo-logs")
    except NetworkError as exc:
        report.error = str(exc)
    finally:
        services.down_started(s, report.started)
        report.leftover_bridges = sorted(bridges() & set(switch_names))
        report.seconds = time.monotonic() - t0
    _print_summary(console, report)
    ok = not report.error and report.ping_loss_pct == 0 and report.telemetry_entries > 0 and not report.leftover_bridges
    ok = ok and (report.edge is None or not report.edge.error)
    return 0 if ok else 1


def _start_load(net, pairs: list[tuple[str, str]], seconds: float) -> list[subprocess.Popen]:
    procs = []
    for i, (client, server) in enumerate(pairs):
        port = 5101 + i
        procs.append(net.get(server).popen(["iperf", "-s", "-p", str(port)], stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))
        time.sleep(0.3)
        procs.append(net.get(client).popen(["iperf", "-c", net.get(server).IP(), "-p", str(port), "-t",
                                            str(int(seconds) + 1)], stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))
    return procs


def _print_summary(console: Console, rep: DemoReport) -> None:
    table = Table("", "", title="NetGPT demo summary", show_header=False)
    table.add_row("topology", f"{rep.topology}: {rep.switches} switches, {rep.hosts} hosts (Open vSwitch, userspace)")
    table.add_row("pingall loss", "-" if rep.ping_loss_pct is None else f"{rep.ping_loss_pct:.0f}%")
    table.add_row("TCP iperf", "-" if rep.iperf_mbps is None else f"{rep.iperf_mbps:.0f} Mbit/s")
    table.add_row("telemetry read back", f"{rep.telemetry_entries} Redis stream entries")
    table.add_row("busiest link", f"{rep.busiest_link} peak {rep.busiest_link_mbps:.0f} Mbit/s" if rep.busiest_link
                  else "-")
    if rep.edge is not None:
        e = rep.edge
        for a in e.answers:
            table.add_row(f"prompt from {a['user']} ({a['cell']})",
                          f"{a['text']!r} -> completed by the {a.get('completed_by', 'rules')}, answered by "
                          f"{a['answered_by']} via {a['node']} in {a['ms']:.0f} ms")
        table.add_row("cells -> MEC nodes", ", ".join(f"{c}->{n}" for c, n in e.allocations.items()) or "-")
        table.add_row("user intents published", str(e.intents_published))
        table.add_row("MEC failover", f"c1 moved to mec2 in {e.failover_s:.1f} s; u1 then answered via "
                      f"{e.after_failover.get('node', '-')}" if e.failover_s is not None else "-")
        if e.error:
            table.add_row("[red]edge loop error[/]", e.error)
    table.add_row("services started/stopped", ", ".join(rep.started) or "none (already running, left running)")
    table.add_row("bridges left behind", ", ".join(rep.leftover_bridges) or "none")
    table.add_row("elapsed", f"{rep.seconds:.1f} s")
    if rep.error:
        table.add_row("[red]error[/]", rep.error)
    console.print(table)
