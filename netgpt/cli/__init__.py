"""The `netgpt` command: the top layer. Each command group is one module here; none of them is imported by a lower
layer.

    netgpt up | down | status      the stack (cli/stack.py)
    netgpt demo                    the main job (cli/demo.py)
    netgpt models ...              build, fine-tune, inspect the language models (cli/models.py)
    netgpt cloud ...               the cloud LLM service (cli/cloud.py)
    netgpt edge ...                the edge agent of one MEC node (cli/edge.py)
    netgpt forecast ...            traffic-forecast backtests and the online loop (cli/forecast.py)
    netgpt intent ...              operator intents: translate, parse, submit, ask (cli/intent.py)
"""
from __future__ import annotations

import os
import sys

import typer

# Progress bars only on a terminal (issue 15): in a log, the weight-loading bars of transformers / huggingface_hub and
# the GGUF converter's tqdm bar write a line per refresh. Set before they are imported, here or in the services this
# process starts.
if not sys.stderr.isatty():
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")

from netgpt.cli import cloud, demo, edge, forecast, intent, models, stack

app = typer.Typer(help="NetGPT: AI-native network management for SDN/MEC.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
stack.register(app)
demo.register(app)
app.add_typer(models.app, name="models")
app.add_typer(cloud.app, name="cloud")
app.add_typer(forecast.app, name="forecast")
app.add_typer(edge.app, name="edge")
app.add_typer(intent.app, name="intent")
