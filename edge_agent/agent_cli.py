"""`netgpt edge ...`: run the edge agent of one MEC node. Heavy imports (torch, transformers) stay inside the commands."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

edge_app = typer.Typer(help="The edge agent: location-aware prompt completion and edge-cloud collaboration.",
                       no_args_is_help=True)


def _fail(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def load_edge_lm(base: str, cache_dir: Path, adapter: Optional[Path]):
    """The edge base on an AdapterServer, with the `complete` adapter when its folder exists. Never trains."""
    from edge_agent.collab import EdgeLM
    from models.base import BaseSpec, load_base
    from models.serving import AdapterServer

    model, tokenizer = load_base(BaseSpec(base, cache_dir), build=False)
    server = AdapterServer(model, tokenizer)
    from models.base import ModelError

    path = adapter or cache_dir / "adapters" / "complete"
    if adapter is not None and not (path / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter} is not a LoRA adapter folder")
    if (path / "adapter_config.json").is_file():
        try:
            server.load_adapter("complete", path)
        except ModelError as exc:
            if adapter is not None:  # asked for explicitly: refuse; the cached default may belong to another base
                raise
            print(f"note: not loading {path}: {exc}", flush=True)
    return EdgeLM(server, "complete")


@edge_app.command()
def serve(node_id: str = typer.Option(..., help="This MEC node's id, e.g. mec1"),
          cells: str = typer.Option(..., help="Cells served, comma-separated, e.g. c1,c2"),
          host: str = typer.Option("0.0.0.0"), port: Optional[int] = typer.Option(None, help="Default: edge_port"),
          address: Optional[str] = typer.Option(None, help="host:port announced in heartbeats (default: host:port)"),
          edge_base: Optional[str] = typer.Option(None, help="Edge LM: edge-default, a folder, or 'none' (facts only)"),
          adapter: Optional[Path] = typer.Option(None, help="`complete` LoRA adapter (default <cache>/adapters/complete)"),
          intents: bool = typer.Option(True, help="Infer and publish each request's demand (user-intent model)")):
    """Serve POST /v1/prompt (OpenAPI at /docs) and heartbeat into Redis."""
    import logging
    import os

    import torch
    import uvicorn

    from edge_agent.agent import AgentSettings, EdgeAgent, create_app
    from edge_agent.location import LocationConfigError
    from models.base import ModelError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(1 if os.getloadavg()[0] >= 1.5 else 2)  # shared 2-core nodes
    settings = AgentSettings()
    port = port or settings.edge_port
    base = edge_base or settings.edge_base
    lm = classifier = None
    try:
        if base != "none":
            lm = load_edge_lm(base, settings.cache_dir, adapter or settings.complete_adapter)
        if intents:
            from edge_agent.user_intent import UserIntentClassifier

            classifier = UserIntentClassifier.load_or_train(settings)
        agent = EdgeAgent(settings, node_id, [c.strip() for c in cells.split(",") if c.strip()],
                          address or f"{host}:{port}", lm=lm, classifier=classifier)
    except (LocationConfigError, ModelError, ValueError, FileNotFoundError, RuntimeError) as exc:
        _fail(str(exc).splitlines()[0])
    loaded = f"edge LM {lm.name}{' + ' + lm.adapter if lm and lm.adapter else ''}" if lm else "no edge LM"
    print(f"edge agent {node_id} serving {', '.join(agent.cells)} on http://{host}:{port} ({loaded}; "
          f"cloud {settings.cloud_url})", flush=True)
    uvicorn.run(create_app(agent), host=host, port=port, log_level="warning")
