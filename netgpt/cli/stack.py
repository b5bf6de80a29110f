"""`netgpt up | down | status`: the services every run needs (redis-server, Open vSwitch, ryu-manager)."""
from __future__ import annotations

import typer
from rich.table import Table

from netgpt.cli.common import console, fail
from netgpt.core.settings import get_settings
from netgpt.stack import services


def up() -> None:
    """Start redis-server, Open vSwitch and ryu-manager with the NetGPT controller apps."""
    try:
        started = services.up(get_settings(), log=lambda m: console.print(m, highlight=False))
    except services.ServiceError as exc:
        fail(str(exc))
    console.print(f"[green]up[/]: {', '.join(started) or 'everything was already running'}")


def down() -> None:
    """Stop what `netgpt up` started, by PID. Components started by someone else are left alone."""
    stopped = services.down(get_settings(), log=lambda m: console.print(m, highlight=False))
    console.print(f"[green]down[/]: {', '.join(stopped) or 'nothing was running'}")


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


def register(app: typer.Typer) -> None:
    for command in (up, down, status):
        app.command()(command)
