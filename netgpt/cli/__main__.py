"""`python -m netgpt.cli ...`: the same as the `netgpt` command (used where the console script is not on PATH)."""
from netgpt.cli import app

app()
