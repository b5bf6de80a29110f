"""What every command group shares: the console and the one-line error exit."""
from __future__ import annotations

import typer
from rich.console import Console

console = Console()


def fail(message: str, code: int = 1) -> None:
    """One line on stderr, no traceback."""
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)
