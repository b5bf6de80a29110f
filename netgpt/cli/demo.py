"""`netgpt demo`: the main job."""
from __future__ import annotations

import sys

import typer

from netgpt.cli.common import console
from netgpt.core.settings import get_settings


def demo(seconds: float = typer.Option(8.0, help="--no-edge: how long to show live link rates"),
         topo: str = typer.Option("mec", help="Topology name from mininet_topos (the scenario needs mec)"),
         edge: bool = typer.Option(True, help="Run the scenario: cloud LLM, edge agents, trace-shaped traffic and "
                                              "prompts, forecasts, a failover"),
         seed: int = typer.Option(0, help="Fixes the scenario's prompt order"),
         quick: bool = typer.Option(False, "--quick", help="A short day: 72 trace steps (72 s) instead of 240")) -> None:
    """The main job: bring the stack up, build the MEC topology, pingall, iperf, then a time-compressed day on it
    (background traffic shaped like real traces, users' prompts in four cells completed at the edge and answered by
    the cloud, the forecast loop, TE and allocation acting, an MEC node failing and coming back); tear down and write
    a report (report.md, report.html, plots) into a run folder whose path is printed at the end."""
    from netgpt.demo import run  # Mininet and the demo's helpers: only when the demo runs

    sys.exit(run.run(get_settings(), topo_name=topo, live_seconds=seconds, console=console, edge=edge, seed=seed,
                     quick=quick))


def register(app: typer.Typer) -> None:
    app.command()(demo)
