"""Congestion benchmark: static shortest path vs reactive vs proactive traffic engineering, on real OVS with shaped
100 Mbit/s links (mininet_topos/diamond.py), one table.

Scenario (the same for every mode): load grows on the upper path as UDP flows start, server -> user:
    t=0  srv1->usr1 60 Mbit/s     t=6  srv2->usr2 60 Mbit/s     t=12  srv3->usr3 30 Mbit/s     all end at t=22
Two seconds before each flow starts, its user intent (UserIntent with the expected bandwidth) is published on Redis,
as the edge agent does when it infers a user's intent from a prompt. Static never moves a flow; reactive moves a flow
once the measured utilisation of a link passes the threshold; proactive also uses the intents (and forecasts).
Loss and throughput come from the iperf UDP servers' reports.

    sudo .venv/bin/python bench/te.py [--modes static,reactive,proactive] [--scale 1.0]
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from netgpt.core import bus  # noqa: E402
from netgpt.stack import services
from netgpt.core.messages import UserIntent  # noqa: E402
from netgpt.core.settings import Settings  # noqa: E402

FLOWS = [  # (start s, server, user, Mbit/s)
    (0.0, "srv1", "usr1", 60.0),
    (6.0, "srv2", "usr2", 60.0),
    (12.0, "srv3", "usr3", 30.0),
]
END_S = 22.0
INTENT_LEAD_S = 2.0


def run_mode(mode: str, scale: float, workdir: Path) -> dict:
    from netgpt.stack.network import running_network
    from netgpt.stack.controller_feed import publish_cells, wait_discovered

    shutil.rmtree(workdir / mode, ignore_errors=True)  # Redis keeps its data (AOF) across restarts: start clean
    s = Settings(te_mode=mode, run_dir=workdir / mode, redis_port=services.free_port(), ofp_port=services.free_port(),
                 ryu_api_port=services.free_port(), stats_interval_s=1.0)
    started = services.up(s)
    try:
        r = bus.connect(s)
        with running_network("diamond", s.ofp_port, shape=True) as net:
            wait_discovered(r, net)
            publish_cells(r, net)
            if net.pingAll(timeout=2) != 0.0:
                raise RuntimeError("pingall lost packets before the scenario")
            time.sleep(2)  # let the ping flows' rates decay out of the measurements
            return _scenario(net, r, scale) | {"moves": _moves(r)}
    finally:
        services.down_started(s, started)


def _scenario(net, r, scale: float) -> dict:
    servers, clients = [], []
    for i, (_, srv, usr, _) in enumerate(FLOWS):
        port = 5201 + i
        servers.append(net.get(usr).popen(["iperf", "-s", "-u", "-p", str(port)], stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True))
    time.sleep(0.5)
    t0 = time.monotonic()
    pending = sorted([(start - INTENT_LEAD_S, "intent", i) for i, (start, *_r) in enumerate(FLOWS)]
                     + [(start, "start", i) for i, (start, *_r) in enumerate(FLOWS)])
    try:
        for at, what, i in pending:
            time.sleep(max(0.0, at + INTENT_LEAD_S - (time.monotonic() - t0)))
            start, srv, usr, mbps = FLOWS[i]
            if what == "intent":
                bus.publish(r, bus.Streams.USER_INTENTS, UserIntent(
                    source="bench", request_id=f"te-{i}", user=usr, cell=f"c{i + 1}", service_class="video_streaming",
                    confidence=0.95, bandwidth_mbps=mbps * scale, duration_s=END_S - start + 5,
                    latency_class="best_effort", user_ip=net.get(usr).IP(), server_ip=net.get(srv).IP()))
            else:
                clients.append(net.get(srv).popen(
                    ["iperf", "-c", net.get(usr).IP(), "-u", "-p", str(5201 + i), "-b", f"{mbps * scale}M",
                     "-l", "1400", "-t", str(END_S - start)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for c in clients:
            c.wait(timeout=END_S + 20)
        time.sleep(1.5)  # the servers print their report when the client's last datagram arrives
    finally:
        for p in clients + servers:
            if p.poll() is None:
                p.terminate()
        outs = [p.communicate(timeout=5)[0] or "" for p in servers]
    lost = total = 0
    mbit = 0.0
    for out in outs:
        m = re.findall(r"([\d.]+)\s+Mbits/sec\s+[\d.]+\s+ms\s+(\d+)/\s*(\d+)", out)
        if not m:
            raise RuntimeError(f"no iperf UDP report: {out.strip()[-300:]}")
        rate, l, n = m[-1]
        lost, total, mbit = lost + int(l), total + int(n), mbit + float(rate)
    return {"lost": lost, "sent": total, "loss_pct": 100.0 * lost / max(total, 1), "recv_mbps": mbit}


def _moves(r) -> int:
    return sum(1 for _, m in bus.read_range(r, bus.Streams.AUDIT) if m.kind == "flow_action")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", default="static,reactive,proactive")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every flow's rate")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/netgpt-bench-te"))
    args = ap.parse_args()
    from netgpt.stack.network import require_root

    if require_root():
        print(f"bench/te.py: {require_root()}")
        return 2
    results = {}
    for mode in args.modes.split(","):
        results[mode] = run_mode(mode, args.scale, args.workdir)
        print(f"{mode}: {results[mode]}", flush=True)
    table = Table(title="Traffic engineering under growing load (diamond, 2 x 100 Mbit/s paths, UDP)")
    for col in ("mode", "sent (datagrams)", "lost", "loss %", "received Mbit/s (sum)", "flow changes (audit)",
                "loss vs static", "loss vs reactive"):
        table.add_column(col)
    base = results.get("static", {}).get("loss_pct")
    reactive = results.get("reactive", {}).get("loss_pct")
    for mode, res in results.items():
        rel = lambda ref: "-" if not ref else f"{res['loss_pct'] / ref:.0%}"  # noqa: E731
        table.add_row(mode, str(res["sent"]), str(res["lost"]), f"{res['loss_pct']:.2f}", f"{res['recv_mbps']:.1f}",
                      str(res["moves"]), rel(base), rel(reactive))
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
