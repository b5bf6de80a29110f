"""The edge agent of one MEC node: an HTTP service (FastAPI; OpenAPI at /docs and /openapi.json).

    POST /v1/prompt   EdgePromptRequest {user, cell, text, mode} -> EdgePromptResponse (answer, completed prompt,
                      token counts, timings, flags)
    GET  /v1/cells    the location context of every cell this node can serve (home cells first), local time now
    GET  /health      node id, cells, models and adapters, Redis and cloud settings, bus counters

Bad input is a 4xx JSON body {"error": "<one line>"}: 422 for an invalid body (empty or oversize prompt), 404 for a
cell this node does not serve; a cloud that refuses the completed prompt is a 502 with its reason. A cloud that cannot
be reached never hangs a request: the client has a timeout and the edge answers instead, flagged.

Every request's inferred demand (netgpt.edge_agent.user_intent.classifier: service class, bandwidth, duration) goes to the controller as
a UserIntent with the requester's address, plus the cell's demand Forecast (edge_agent/agent_bus.py).
"""
from __future__ import annotations

import logging
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from netgpt.edge_agent.agent_bus import AgentBus, LoadMeter, RedisLink
from netgpt.edge_agent.collab.edge_lm import EdgeLM
from netgpt.edge_agent.collab.engine import CloudClient, CloudRejected, CollabEngine
from netgpt.edge_agent.location.cells import CELLS_PATH, CellContext, load_cells
from netgpt.edge_agent.user_intent.classifier import validate_prompt
from netgpt.core.bus import connect
from netgpt.core.messages import AgentHeartbeat, EdgePromptRequest, EdgePromptResponse, first_error
from netgpt.core.settings import Settings

log = logging.getLogger("edge_agent")


class AgentSettings(Settings):
    """The edge agent's own settings (NETGPT_<FIELD> like every setting), on top of the shared ones."""

    cells_file: Path = CELLS_PATH
    complete_adapter: Path | None = Field(None, description="LoRA `complete` adapter; default <cache>/adapters/complete")
    cloud_timeout_s: float = Field(20.0, gt=0, description="A cloud call never takes longer than this")
    cloud_max_tokens: int = Field(96, ge=1)
    edge_max_tokens: int = Field(48, ge=1)
    draft_tokens: int = Field(12, ge=0, description="Tokens the edge LM may add to a prompt (0: facts only)")
    # routed mode: the edge answers at or above this confidence. 1.0 = only exact answers from the cell's context: the
    # edge GPT-2 is not an instruction model, and at 0.5 its memorised corpus phrases passed as confident answers
    # (bench/collab.py, first run: 16 of 32 prompts answered off-topic by the edge LM).
    route_threshold: float = Field(1.0, ge=0, le=1, description="routed mode: the edge answers at this confidence")
    cloud_prefill: bool = Field(True, description="The cloud continues a begun answer (vLLM's continue_final_message, "
                                "as `netgpt cloud serve`); only the engine's prefill mode, off by default, uses it")
    capacity_rps: float = Field(2.0, gt=0, description="Requests per second this node is announced to serve")


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message})


class EdgeAgent:
    """Everything one MEC node serves with: cells, edge LM, cloud client, intent model, Redis link."""

    def __init__(self, settings: AgentSettings, node_id: str, cells: list[str], address: str,
                 lm: EdgeLM | None = None, classifier=None, cloud: CloudClient | None = None):
        every = load_cells(settings.cells_file)
        unknown = [c for c in cells if c not in every]
        if unknown:
            raise ValueError(f"unknown cell(s) {', '.join(unknown)}; {settings.cells_file} has {', '.join(every)}")
        self.settings, self.node_id, self.address = settings, node_id, address
        # Home cells are announced in heartbeats; every cell of the file can be served, because the controller moves
        # a cell to another node when its home node fails or overloads (controller/allocation.py).
        self.home_cells = list(cells)
        self.cells: dict[str, CellContext] = dict(every)
        self.lm, self.classifier = lm, classifier
        if cloud is None:
            cloud = CloudClient(settings.cloud_url, settings.cloud_model, settings.cloud_timeout_s,
                                settings.cloud_max_tokens)
        self.engine = CollabEngine(self.cells, lm, cloud, settings.route_threshold, settings.edge_max_tokens,
                                   settings.draft_tokens, source=f"edge:{node_id}",
                                   cloud_prefill=settings.cloud_prefill)
        self.load = LoadMeter()
        # bus.connect makes one attempt per command: a heartbeat never sits in redis-py's backoff while Redis is down.
        self.bus = AgentBus(RedisLink(lambda: connect(settings, timeout_s=1.0), node_id), self.heartbeat,
                            settings.heartbeat_interval_s)

    def heartbeat(self) -> AgentHeartbeat:
        models = [self.lm.name] if self.lm else []
        adapters = [self.lm.adapter] if self.lm and self.lm.adapter else []
        return AgentHeartbeat(source=f"edge:{self.node_id}", node_id=self.node_id, address=self.address,
                              cells=self.home_cells, capacity_rps=self.settings.capacity_rps,
                              load_rps=self.load.rps(), models=models, adapters=adapters)

    def serve(self, req: EdgePromptRequest, user_ip: str | None, server_ip: str | None) -> EdgePromptResponse:
        self.load.hit()
        rid = uuid.uuid4().hex[:16]
        service = None
        if self.classifier is not None:
            intent = self.classifier.infer_intent(req.text, req.user, req.cell, rid, source=f"edge:{self.node_id}")
            self.bus.submit(intent.model_copy(update={"user_ip": user_ip, "server_ip": server_ip}))
            service = intent.service_class
        return self.engine.handle(req, service=service, request_id=rid)


def create_app(agent: EdgeAgent) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        agent.bus.start()  # heartbeats and demand publishing run while the server does
        yield
        agent.bus.stop()

    app = FastAPI(title=f"NetGPT edge agent {agent.node_id}", version="1", lifespan=lifespan,
                  description="Location-aware prompt completion on an MEC node, and edge-cloud collaboration.")

    @app.exception_handler(RequestValidationError)
    def invalid_body(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"error": first_error(exc.errors()),
                                                      "detail": jsonable(exc.errors())})

    @app.exception_handler(StarletteHTTPException)
    def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """FastAPI's own errors (a body that is not JSON, an unknown path) in this API's {"error": ...} shape."""
        return JSONResponse(status_code=exc.status_code, content={"error": str(exc.detail)},
                            headers=getattr(exc, "headers", None))  # e.g. Allow on a 405

    @app.post("/v1/prompt", response_model=EdgePromptResponse,
              responses={400: {"description": "The body is not JSON"}, 404: {"description": "Cell not served here"},
                         422: {"description": "Invalid request"},
                         502: {"description": "The cloud LLM refused the completed prompt"}})
    def prompt(req: EdgePromptRequest, request: Request):
        """Complete the user's prompt with the cell's location context and answer it in the requested mode."""
        try:
            validate_prompt(req.text)
        except ValueError as exc:
            return error(422, f"text: {exc}")
        if req.cell not in agent.cells:
            return error(404, f"unknown cell {req.cell!r} (known: {', '.join(agent.cells)})")
        client = request.client.host if request.client else None
        server = request.scope.get("server", (None,))[0]
        try:
            return agent.serve(req, user_ip=client, server_ip=server)
        except CloudRejected as exc:
            return error(502, str(exc))

    @app.get("/v1/cells")
    def cells() -> dict:
        """The location context of every cell served here, with the local time now."""
        now = time.time()
        facts = {c: ctx.facts(now) for c, ctx in agent.cells.items()}
        return {c: {**ctx.model_dump(), "local_time": facts[c]["local_time"],
                    "local_date": f"{facts[c]['weekday']} {facts[c]['date']}"}
                for c, ctx in agent.cells.items()}

    @app.get("/health")
    def health() -> dict:
        hb = agent.heartbeat()
        return {"status": "ok", "node_id": agent.node_id, "cells": hb.cells, "models": hb.models,
                "adapters": hb.adapters, "intent_model": agent.classifier is not None,
                "redis": {None: "not tried yet", True: "up", False: "down"}[agent.bus.link.up],
                "cloud_url": agent.settings.cloud_url, "load_rps": hb.load_rps,
                "sent": agent.bus.sent, "dropped": agent.bus.dropped}

    return app


def jsonable(errors: list) -> list:
    """Validation errors without their (possibly non-JSON) input and context values."""
    return [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in errors]
