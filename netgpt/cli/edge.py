"""`netgpt edge ...`: run the edge agent of one MEC node.

The agent itself (FastAPI, uvicorn, the collaboration engine) is imported inside `serve`: every other `netgpt` command would
otherwise pay for it at start-up.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer

from netgpt.cli.common import fail
from netgpt.edge_agent.location.cells import LocationConfigError
from netgpt.models.base import ModelError, configure_threads

app = typer.Typer(help="The edge agent: location-aware prompt completion and edge-cloud collaboration.",
                  no_args_is_help=True)


@app.command()
def serve(node_id: str = typer.Option(..., help="This MEC node's id, e.g. mec1"),
          cells: str = typer.Option(..., help="Cells served, comma-separated, e.g. c1,c2"),
          host: str = typer.Option("0.0.0.0"), port: Optional[int] = typer.Option(None, help="Default: edge_port"),
          address: Optional[str] = typer.Option(None, help="host:port announced in heartbeats (default: host:port)"),
          edge_base: Optional[str] = typer.Option(None, help="Edge LM: edge-default, a folder, or 'none' (facts only)"),
          adapter: Optional[Path] = typer.Option(None, help="`complete` LoRA adapter (default <cache>/adapters/complete)"),
          intents: bool = typer.Option(True, help="Infer and publish each request's demand (user-intent model)")):
    """Serve POST /v1/prompt (OpenAPI at /docs) and heartbeat into Redis."""
    import uvicorn

    from netgpt.edge_agent.agent import AgentSettings, EdgeAgent, create_app
    from netgpt.edge_agent.collab.edge_lm import load_edge_lm

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    configure_threads()
    settings = AgentSettings()
    port = port or settings.edge_port
    base = edge_base or settings.edge_base
    lm = classifier = None
    try:
        if base != "none":
            lm = load_edge_lm(base, settings.cache_dir, adapter or settings.complete_adapter, settings.serving_backend)
        if intents:
            from netgpt.edge_agent.user_intent.classifier import UserIntentClassifier

            classifier = UserIntentClassifier.load_or_train(settings)
        agent = EdgeAgent(settings, node_id, [c.strip() for c in cells.split(",") if c.strip()],
                          address or f"{host}:{port}", lm=lm, classifier=classifier)
    except (LocationConfigError, ModelError, ValueError, FileNotFoundError, RuntimeError) as exc:
        fail(str(exc).splitlines()[0])
    loaded = f"edge LM {lm.name}{' + ' + lm.adapter if lm and lm.adapter else ''}" if lm else "no edge LM"
    print(f"edge agent {node_id} serving {', '.join(agent.cells)} on http://{host}:{port} ({loaded}; "
          f"cloud {settings.cloud_url})", flush=True)
    uvicorn.run(create_app(agent), host=host, port=port, log_level="warning")
