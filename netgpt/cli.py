"""The `netgpt` command. Service lifecycle lives here; each component adds its own command group."""
from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from edge_agent.agent_cli import edge_app
from edge_agent.cli import forecast_app
from models.cli import app as models_app
from models.cli import cloud_app
from netgpt import services
from netgpt.settings import get_settings

app = typer.Typer(help="NetGPT: AI-native network management for SDN/MEC.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.add_typer(models_app, name="models")
app.add_typer(cloud_app, name="cloud")
app.add_typer(forecast_app, name="forecast")
app.add_typer(edge_app, name="edge")

console = Console()


def fail(message: str, code: int = 1) -> None:
    """One line on stderr, no traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def up() -> None:
    """Start redis-server, Open vSwitch and ryu-manager with the NetGPT controller apps."""
    try:
        started = services.up(get_settings(), log=lambda m: console.print(m, highlight=False))
    except services.ServiceError as exc:
        fail(str(exc))
    console.print(f"[green]up[/]: {', '.join(started) or 'everything was already running'}")


@app.command()
def down() -> None:
    """Stop what `netgpt up` started, by PID. Components started by someone else are left alone."""
    stopped = services.down(get_settings(), log=lambda m: console.print(m, highlight=False))
    console.print(f"[green]down[/]: {', '.join(stopped) or 'nothing was running'}")


@app.command()
def status() -> None:
    """Check each component; exit code 1 if any is down."""
    rows = services.status(get_settings())
    table = Table("component", "state", "pid", "detail")
    for row in rows:
        table.add_row(row.name, "[green]up[/]" if row.up else "[red]down[/]", str(row.pid or "-"), row.detail)
    console.print(table)
    down_names = [r.name for r in rows if not r.up]
    if down_names:
        console.print(f"[red]not running:[/] {', '.join(down_names)}")
        raise typer.Exit(1)


@app.command()
def demo(seconds: float = typer.Option(8.0, help="How long to show live link rates"),
         topo: str = typer.Option("mec", help="Topology name from mininet_topos"),
         edge: bool = typer.Option(True, help="Also run the edge loop: cloud LLM, edge agents, prompts, failover")) -> None:
    """The main job: bring the stack up, build a topology, pingall, iperf, show live link rates from Redis, then users
    prompt the edge agents (completed with their location, answered by the cloud LLM) while the controller steers cells
    to MEC nodes and fails over; tear down and summarise."""
    from netgpt import demo as demo_mod

    sys.exit(demo_mod.run(get_settings(), topo_name=topo, live_seconds=seconds, console=console, edge=edge))


if __name__ == "__main__":
    app()
