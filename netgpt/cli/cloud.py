"""`netgpt cloud ...`: the cloud LLM service (OpenAI API) and a one-question client.

FastAPI (the service) and the `openai` client are imported inside their commands: together they would double the
start-up time of every `netgpt` command (about 0.45 s here), and each is needed by one command only.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from netgpt.cli.common import console, fail
from netgpt.core.settings import get_settings
from netgpt.models.backends import open_server
from netgpt.models.base import ModelError, configure_threads

app = typer.Typer(help="The cloud LLM service (OpenAI API).", no_args_is_help=True)


@app.command()
def serve(host: str = typer.Option("127.0.0.1"), port: int = typer.Option(8000),
          base: Optional[str] = typer.Option(None, help="cloud-default (default), edge-default, a folder or a hub id"),
          adapter: list[Path] = typer.Option([], help="LoRA adapter folder(s) to serve as extra model ids"),
          max_queue: int = typer.Option(8, help="Refuse new requests (429) while this many run or wait; 0: no cap"),
          backend: Optional[str] = typer.Option(None, help="llamacpp or torch (default: settings serving_backend)"),
          slots: Optional[int] = typer.Option(None, help="llama.cpp contexts serving side by side (default: "
                                                         "settings serving_slots)")) -> None:
    """Serve a base model (and adapters) with the OpenAI API: /v1/models, /v1/chat/completions, /v1/completions."""
    import uvicorn

    from netgpt.models.cloud_service import create_app  # FastAPI: see the module docstring

    threads = configure_threads()
    settings = get_settings()
    backend = backend or settings.serving_backend
    try:
        server = open_server(base or settings.cloud_base, settings.cache_dir, backend,
                             slots=slots or settings.serving_slots, adapters={p.name: p for p in adapter},
                             log=lambda m: console.print(m, highlight=False))
    except ModelError as exc:
        fail(str(exc))
    runs_on = (f"{threads} torch threads" if backend == "torch"
               else f"llama.cpp, {server.info()['slots']} slot(s) x {server.info()['threads_per_slot']} threads")
    console.print(f"serving {', '.join(server.model_ids())} on http://{host}:{port}/v1 ({runs_on})", highlight=False)
    uvicorn.run(create_app(server, max_queue=max_queue), host=host, port=port, log_level="warning")


@app.command()
def ask(prompt: str, url: Optional[str] = typer.Option(None, help="OpenAI-compatible base URL (default: settings)"),
        model: Optional[str] = typer.Option(None, help="Model id (default: settings cloud_model)"),
        max_tokens: int = typer.Option(64),
        timeout_s: float = typer.Option(120.0, help="Give up after this many seconds")) -> None:
    """Ask the configured cloud (this service, vLLM, Ollama ...) one question through the OpenAI API, streaming."""
    import openai  # this and the client factory (it imports openai): see the module docstring

    from netgpt.models.cloud_client import openai_client

    settings = get_settings()
    client = openai_client(url or settings.cloud_url, timeout_s)
    try:
        stream = client.chat.completions.create(model=model or settings.cloud_model, max_tokens=max_tokens,
                                                stream=True, messages=[{"role": "user", "content": prompt}])
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                console.print(chunk.choices[0].delta.content, end="", highlight=False)
    except openai.APIConnectionError:  # a timeout is one too
        fail(f"no cloud LLM at {client.base_url} (start one: netgpt cloud serve)")
    except openai.APIStatusError as exc:
        fail(f"cloud LLM at {client.base_url} answered {exc.status_code}: {exc.message}")
    console.print()
