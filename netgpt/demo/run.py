"""`make demo`: the whole loop end to end on real parts, then a report in a run folder.

Stack up (redis-server, Open vSwitch, ryu-manager with the NetGPT apps, the operator API, the forecast loop) -> MEC
topology on OVS -> pingall, iperf -> the cloud LLM and the MEC agents -> the time-compressed day of
netgpt.demo.scenario -> what the run's Redis holds is read (netgpt.demo.report_data) -> everything torn down by PID
-> report.md / report.html / PNGs in <run_dir>/demo-<time>/, whose path is printed last.
"""
from __future__ import annotations

import subprocess
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import redis
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from netgpt.core import bus
from netgpt.core.settings import Settings
from netgpt.demo.edge import HOME, EdgeServices, allocations
from netgpt.demo.report import write_report
from netgpt.demo.report_data import RunData, collect, figures
from netgpt.demo.scenario import CAPACITY_RPS, PERIOD, STEP_S, Outcome, Plan, drop_stale_history, run_scenario
from netgpt.stack import services
from netgpt.stack.controller_feed import publish_cells, wait_discovered
from netgpt.stack.network import NetworkError, bridges, iperf, port_links, require_root, running_network

QUICK_STEPS, FULL_STEPS = 72, 240  # trace steps: 6 and 20 hours of the day, 72 s and 240 s of demo


@dataclass
class DemoRun:
    topology: str
    seed: int
    quick: bool
    run_dir: Path
    since_ms: int = 0
    switches: int = 0
    hosts: int = 0
    ping_loss_pct: float | None = None
    iperf_mbps: float | None = None
    iperf_pair: str = "-"
    started: list[str] = field(default_factory=list)
    leftover_bridges: list[str] = field(default_factory=list)
    outcome: Outcome | None = None
    data: RunData | None = None
    cells_home_ts: float | None = None  # every cell on its home node at the start: earlier changes are the start's
    edge_stopped_ts: float | None = None  # the edge agents' teardown began: later allocation changes are its doing
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> list[tuple[str, str]]:
        rows = [("topology", f"{self.topology}: {self.switches} switches, {self.hosts} hosts (Open vSwitch, userspace)"),
                ("run", f"seed {self.seed}, {'--quick' if self.quick else 'full'}, {self.seconds:.0f} s"),
                ("pingall loss", "-" if self.ping_loss_pct is None else f"{self.ping_loss_pct:.0f}%"),
                (f"TCP iperf {self.iperf_pair}", "-" if self.iperf_mbps is None else f"{self.iperf_mbps:.0f} Mbit/s")]
        if self.outcome is not None:
            o = self.outcome
            node = o.failed_node or "mec1"
            rows.append(("MEC failover", f"{node}'s agent stopped, its cells moved in {o.failover_s:.1f} s"
                         if o.failover_s is not None else f"not timed ({node} served no cell when it stopped)"))
            rows.append((f"{node} back", "yes" if o.restored else "no"))
        rows.append(("services started and stopped", ", ".join(self.started) or "none (already running)"))
        rows.append(("bridges left behind", ", ".join(self.leftover_bridges) or "none"))
        rows += [("error", e) for e in self.all_errors]
        return rows

    @property
    def all_errors(self) -> list[str]:
        """The run's own and the scenario's."""
        return self.errors + (self.outcome.errors if self.outcome else [])


class Phases:
    """One console line per phase, with the time since the demo began."""

    def __init__(self, console: Console):
        self.console, self.t0, self.n = console, time.monotonic(), 0

    def __call__(self, what: str) -> None:
        self.n += 1
        self.console.print(f"[bold]\\[{self.n}][/] {escape(what)} [dim]({time.monotonic() - self.t0:.0f} s)[/]",
                           highlight=False, soft_wrap=True)  # one line each, also in a log

    def detail(self, what: str) -> None:
        self.console.print(escape(what), highlight=False, soft_wrap=True)


def _rates_table(rates: dict[str, float], top: int = 10) -> Table:
    table = Table("link / cell", "rate (Mbit/s)", title="live rates from Redis (netgpt:telemetry)")
    for name, bps in sorted(rates.items(), key=lambda kv: -kv[1])[:top]:
        table.add_row(name, f"{bps / 1e6:8.1f}")
    return table


def watch_link_rates(r, links: dict[tuple[int, int], str], seconds: float, live: Live) -> None:
    """Follow the telemetry stream for `seconds`, showing the latest rate per link (max of both ends') and cell."""
    latest: dict[str, float] = {}
    last_id = "$"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reply = r.xread({bus.Streams.TELEMETRY: last_id}, count=1000, block=500)
        for _stream, items in reply or []:
            for entry_id, fields in items:
                last_id = entry_id
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
        live.update(_rates_table(latest))


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


def _live_view(net, r, topology: str, seconds: float, console: Console) -> None:
    """Without the edge scenario: two TCP flows across the core while live rates are read back from Redis."""
    hosts = [("u1", "cloud"), ("u3", "mec1")] if topology == "mec" else [(net.hosts[0].name, net.hosts[-1].name)]
    loads = _start_load(net, hosts, seconds)
    try:
        with Live(_rates_table({}), console=console, refresh_per_second=2) as live:
            watch_link_rates(r, port_links(net), seconds, live)
    finally:
        for p in loads:
            services.stop_child(p, timeout_s=5)


def _scenario(net, s: Settings, demo: DemoRun, plan: Plan, phase: Phases, console: Console) -> None:
    r = bus.connect(s)
    edge = EdgeServices(net, s, demo.run_dir, CAPACITY_RPS)
    try:
        phase("cloud LLM on host cloud, an edge agent on mec1 and mec2 (models load)")
        edge.start()
        edge.wait_ready()
        services.wait_for(lambda: allocations(r) == HOME, 60, "cells on their home nodes")
        demo.cells_home_ts = time.time()
        phase.detail(f"  allocations {HOME}; users reach the edge service at {s.edge_vip}")
        phase(f"a time-compressed day: {plan.steps} trace steps of 5 min, {plan.seconds:.0f} s (background traces, "
              f"prompts in {len(HOME)} cells, forecasts, a failover)")
        if console.is_terminal:
            with Progress(TextColumn("  day"), BarColumn(), TimeElapsedColumn(), console=console,
                          transient=True) as bar:
                task = bar.add_task("day", total=plan.seconds)
                demo.outcome = run_scenario(net, s, edge, plan, phase.detail,
                                            tick=lambda done: bar.update(task, completed=done))
        else:
            demo.outcome = run_scenario(net, s, edge, plan, phase.detail)
    finally:
        demo.edge_stopped_ts = time.time()
        edge.stop_all()


def _free_shells(net, timeout_s: float = 5.0) -> None:
    """A Ctrl-C that lands while a node's shell runs a command (a user's prompt, a ping) leaves the shell busy, and
    Mininet's teardown then fails on its first command there (and leaves hosts running): interrupt the command and
    read the shell back to its prompt first."""
    for node in net.hosts + net.switches:
        if not node.waiting:
            continue
        node.sendInt()
        deadline = time.monotonic() + timeout_s
        while node.waiting and time.monotonic() < deadline:
            node.monitor(timeoutms=200)
        node.waiting = False  # given up on its output: the shell is terminated with the host anyway


def _network(s: Settings, demo: DemoRun, plan: Plan, phase: Phases, console: Console, edge: bool,
             live_seconds: float) -> None:
    r = bus.connect(s)
    switch_names: list[str] = []
    try:
        with running_network(demo.topology, s.ofp_port) as net:
            switch_names = [sw.name for sw in net.switches]
            try:
                wait_discovered(r, net)
                publish_cells(r, net)
                demo.switches, demo.hosts = len(net.switches), len(net.hosts)
                phase(f"topology {demo.topology}: {demo.switches} switches, {demo.hosts} hosts; pingall and iperf")
                demo.ping_loss_pct = net.pingAll(timeout=2)
                # on mec, from a cell behind agg2: u1's way crosses agg1's thin uplink, and TE would move the iperf
                src, dst = ("u4", "cloud") if demo.topology == "mec" else (net.hosts[0].name, net.hosts[-1].name)
                demo.iperf_pair = f"{src} -> {dst}"
                demo.iperf_mbps = iperf(net, src, dst, seconds=3)
                phase.detail(f"  pingall {demo.ping_loss_pct:.0f}% loss; iperf {src} -> {dst} "
                             f"{demo.iperf_mbps:.0f} Mbit/s")
                if edge and demo.topology == "mec":
                    _scenario(net, s, demo, plan, phase, console)
                else:
                    _live_view(net, r, demo.topology, live_seconds, console)
            finally:
                _free_shells(net)
                phase("reading the run's streams from Redis, then stopping everything")
                try:
                    demo.data = collect(r, demo.since_ms, demo.run_dir, time.time(),
                                        (demo.cells_home_ts, demo.edge_stopped_ts))
                    demo.data.marks = dict(demo.outcome.marks) if demo.outcome else {}
                except redis.RedisError as exc:
                    demo.errors.append(f"the run's streams could not be read: {exc}")
    finally:
        demo.leftover_bridges = sorted(bridges() & set(switch_names))


def run(s: Settings, topo_name: str = "mec", live_seconds: float = 8.0, console: Console | None = None,
        edge: bool = True, seed: int = 0, quick: bool = False) -> int:
    console = console or Console()
    reason = require_root()
    if reason:
        console.print(f"[red]demo needs:[/] {reason}")
        return 2
    plan = Plan(steps=QUICK_STEPS if quick else FULL_STEPS, seed=seed)
    # The forecast loop steps with the trace replay, one season a replayed day, so the warm start fits.
    s = s.model_copy(update={"forecast_step_s": STEP_S, "forecast_period": PERIOD, "forecast_horizon": 5,
                             "forecast_refit_s": 20.0})
    demo = DemoRun(topology=topo_name, seed=seed, quick=quick,
                   run_dir=s.run_dir / f"demo-{time.strftime('%Y%m%d-%H%M%S')}")
    demo.run_dir.mkdir(parents=True, exist_ok=True)
    phase, t0 = Phases(console), time.monotonic()
    demo.since_ms = int(time.time() * 1000)  # Redis keeps earlier runs' entries: the report reads from here on
    phase("stack up: redis-server, Open vSwitch, ryu-manager, operator API, forecast loop")
    try:
        demo.started = services.up(s, log=phase.detail)
    except services.ServiceError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        return 1
    if "redis" in demo.started:  # this Redis is the demo's own, with what earlier runs left in it
        drop_stale_history(bus.connect(s), time.time())
    if "forecast" not in demo.started:
        demo.errors.append("the forecast loop was already running with its own settings: warm starts may not fit")
    try:
        _network(s, demo, plan, phase, console, edge, live_seconds)
    except (NetworkError, TimeoutError, services.ServiceError) as exc:
        demo.errors.append(str(exc))
    except KeyboardInterrupt:  # what was started is stopped below and by the `with` blocks; the report still comes
        demo.errors.append("interrupted (Ctrl-C): the report has what was measured until then")
    except Exception as exc:  # a fault of the demo itself: still torn down and reported, the traceback in the logs
        (demo.run_dir / "error.txt").write_text(traceback.format_exc())
        demo.errors.append(f"{type(exc).__name__}: {exc} (traceback in {demo.run_dir / 'error.txt'})")
    finally:
        services.down_started(s, demo.started)
        demo.seconds = time.monotonic() - t0
    return _finish(demo, console)


def _finish(demo: DemoRun, console: Console) -> int:
    table = Table("", "", title="NetGPT demo summary", show_header=False)
    for k, v in demo.summary():
        table.add_row(k, escape(v))
    fig = figures(demo.data) if demo.data is not None else {}  # once: the report states the same
    for key in ("busiest_link", "busiest_link_peak_mbps", "forecasts", "te_moves", "allocation_changes",
                "intents_verified", "intents_verified_by_measurement", "intents_withdrawn", "user_intents",
                "prompts_answered", "latency_p50_ms", "replay_answered"):
        table.add_row(key.replace("_", " "), "-" if fig.get(key) is None else str(fig[key]))
    console.print(table)
    if demo.data is not None:
        path = write_report(demo.data, demo.run_dir, demo.summary(), fig)
        console.print(f"report: [bold]{path}[/] (and report.html)", highlight=False)
    else:
        console.print(f"no report: the run's streams could not be read (logs in {demo.run_dir})")
    ok = not demo.all_errors and demo.ping_loss_pct == 0 and demo.data is not None and demo.data.telemetry_entries > 0
    return 0 if ok and not demo.leftover_bridges else 1
