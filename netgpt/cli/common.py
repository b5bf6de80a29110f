"""What every command group shares: the console and the one-line error exit."""
from __future__ import annotations

import typer
from rich.console import Console

console = Console()


def fail(message: str, code: int = 1) -> None:
    """One line on stderr, no traceback."""
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def positive_minutes(value: float | None) -> float | None:
    """A --minutes option's check (typer's Option has no open lower bound): 0 would mean no cap at all to
    lora.optimise, not a tiny one."""
    if value is not None and not value > 0:  # also nan
        fail("--minutes must be more than 0")
    return value


def parse_blocks(spec: str) -> list[int]:
    """"0-7,28,29" -> [0, ..., 7, 28, 29] (a student's blocks); ValueError when it is not that."""
    out = []
    for part in spec.split(","):
        a, dash, b = part.strip().partition("-")
        out += list(range(int(a), int(b) + 1)) if dash else [int(a)]  # "3-" is int("") -> ValueError
    return out
