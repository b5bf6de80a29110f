"""`netgpt demo`: the main job."""
from __future__ import annotations

import sys

import typer

from netgpt.cli.common import console
from netgpt.core.settings import get_settings


def demo(seconds: float = typer.Option(8.0, help="How long to show live link rates"),
         topo: str = typer.Option("mec", help="Topology name from mininet_topos"),
         edge: bool = typer.Option(True, help="Also run the edge loop: cloud LLM, edge agents, prompts, failover")) -> None:
    """The main job: bring the stack up, build a topology, pingall, iperf, show live link rates from Redis, then users
    prompt the edge agents (completed with their location, answered by the cloud LLM) while the controller steers cells
    to MEC nodes and fails over; tear down and summarise."""
    from netgpt.demo import run  # Mininet and the demo's helpers: only when the demo runs

    sys.exit(run.run(get_settings(), topo_name=topo, live_seconds=seconds, console=console, edge=edge))


def register(app: typer.Typer) -> None:
    app.command()(demo)
