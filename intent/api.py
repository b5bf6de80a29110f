"""The operator API: intents and questions over HTTP (FastAPI; the OpenAPI spec at /openapi.json, docs at /docs).

    POST   /v1/intents        {"text", "level": auto|high|flow, "force"} -> 201 IntentRecord (compiled, sent)
    GET    /v1/intents        every IntentRecord;  GET /v1/intents/{id} one (404 when unknown)
    DELETE /v1/intents/{id}   202: the withdrawal is sent; the controller records `withdrawn`
    POST   /v1/ask            {"text", "plot"} -> QueryAnswer (netgpt.intent.queries); GET /v1/plots/{name} its PNG
    POST   /v1/translate      {"text"} -> the ofctl_rest entries of a flow-level sentence (nothing changes)
    POST   /v1/parse          {"text"} -> the HighLevelIntent, confidence, reader (nothing changes)

Every /v1 route needs `Authorization: Bearer <token>` (operator_token: NETGPT_OPERATOR_TOKEN, else a file in
run_dir made on first use); the spec and docs are open, they hold no network data. Every error is one JSON body of
IntentProblem's shape ({"kind", "message", "field", "question", "options"}): the IntentProblem itself when a sentence
gives no intent (422; 409 for a conflict, 404 for an unknown entity), kind unauthorized (401), invalid for a bad body
(422, one line, never a traceback), unavailable when Redis is down (503).
"""
from __future__ import annotations

import logging
import os
import re
import secrets
from pathlib import Path
from typing import Any, Literal

import redis
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from netgpt.core import bus
from netgpt.core.messages import HighLevelIntent, IntentRecord, first_error
from netgpt.core.settings import Settings
from netgpt.intent import service
from netgpt.intent.errors import IntentError
from netgpt.intent.flows import translate_to_flows
from netgpt.intent.parse import understand
from netgpt.intent.queries import QueryAnswer, answer
from netgpt.intent.store import IntentStore
from netgpt.intent.text import MAX_CHARS

log = logging.getLogger(__name__)

TOKEN_ENV = "NETGPT_OPERATOR_TOKEN"
STATUS = {"conflict": 409, "unknown_entity": 404}  # every other IntentProblem kind is 422
KEEP_PLOTS = 50  # PNGs kept under run_dir/plots; older ones are removed as new ones are written
_PLOT_NAME = re.compile(r"^[\w.-]+\.png$")


def token_file(settings: Settings) -> Path:
    return Path(settings.run_dir) / "operator-token"


def operator_token(settings: Settings) -> str:
    """The bearer token of the operator API, the same for the server and the CLI: $NETGPT_OPERATOR_TOKEN, else
    run_dir/operator-token, created (mode 0600, only this user can read it) by whichever of them needs it first."""
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env
    path = token_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # O_EXCL: two first starts cannot both write
    except FileExistsError:
        token = path.read_text().strip()
        if token:
            return token
        raise RuntimeError(f"{path} is empty: remove it, and a new token is made") from None
    token = secrets.token_urlsafe(24)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


class Problem(BaseModel):
    """Every error body of this API: IntentProblem's fields, with the API's own kinds besides the intent ones
    (unauthorized, invalid, not_found, unavailable, internal)."""

    kind: str
    message: str
    field: str | None = None
    question: str | None = None
    options: list[str] = []


def problem(status: int, kind: str, message: str, headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse(status_code=status, content=Problem(kind=kind, message=message, **extra).model_dump(),
                        headers=headers)


class _Refused(Exception):
    """Raised by the auth dependency: the handler turns it into a 401 Problem (FastAPI's own would be {"detail"})."""

    def __init__(self, message: str):
        self.message = message


class Text(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # No min_length: an empty sentence is the intent layer's own 'empty' problem (netgpt.intent.text.checked)
    text: str = Field(max_length=MAX_CHARS, description="One operator sentence")


class Submission(Text):
    level: Literal["auto", "high", "flow"] = Field("auto", description="auto: flow-level when it names a switch number")
    force: bool = Field(False, description="Send it even when it conflicts with installed intents")


class Question(Text):
    plot: bool = Field(False, description="Also draw a PNG (forecast and throughput questions): GET the `plot` path")


class Reading(BaseModel):
    intent: HighLevelIntent
    confidence: float
    read_by: str
    unread: list[str] = []


ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": Problem, "description": "No or wrong bearer token"},
                                           422: {"model": Problem, "description": "Not understood, or a bad body"},
                                           503: {"model": Problem, "description": "Redis is unavailable"}}


def create_app(settings: Settings, r: redis.Redis | None = None, lm="default") -> FastAPI:
    """The app; `r` defaults to bus.connect(settings), `lm` is the LM intent reader as understand() takes it (None:
    the rules alone)."""
    r = r if r is not None else bus.connect(settings)
    token = operator_token(settings).encode()
    plot_dir = Path(settings.run_dir) / "plots"
    bearer = HTTPBearer(auto_error=False, description=f"The operator token (${TOKEN_ENV} or run_dir/operator-token)")

    def authorised(creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if creds is None:
            raise _Refused("missing bearer token: send 'Authorization: Bearer <token>'")
        if not secrets.compare_digest(creds.credentials.encode(), token):  # constant time: no timing oracle
            raise _Refused("wrong bearer token")

    app = FastAPI(title="NetGPT operator API", version="1", dependencies=[Depends(authorised)], responses=ERRORS,
                  description="Operator intents in natural language: submit, follow and withdraw them, and ask the "
                              "network questions. Every /v1 route needs the operator's bearer token.")

    @app.exception_handler(_Refused)
    def refused(_request: Request, exc: _Refused) -> JSONResponse:
        return problem(401, "unauthorized", exc.message, headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(IntentError)
    def not_an_intent(_request: Request, exc: IntentError) -> JSONResponse:
        return JSONResponse(status_code=STATUS.get(exc.kind, 422), content=exc.problem.model_dump())

    @app.exception_handler(RequestValidationError)
    def bad_body(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        where = [str(p) for p in errors[0].get("loc", ()) if p != "body"] if errors else []
        return problem(422, "invalid", first_error(errors), field=".".join(where) or None)

    @app.exception_handler(StarletteHTTPException)
    def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """FastAPI's own errors (an unknown path, a wrong method) in the same shape."""
        kind = {404: "not_found", 405: "invalid"}.get(exc.status_code, "invalid")
        return problem(exc.status_code, kind, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(redis.RedisError)
    def redis_down(_request: Request, exc: redis.RedisError) -> JSONResponse:
        where = settings.redis_socket or f"{settings.redis_host}:{settings.redis_port}"
        return problem(503, "unavailable", f"Redis at {where} is unavailable: {str(exc).splitlines()[0]}")

    @app.exception_handler(Exception)
    def internal(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("operator API request failed")  # the traceback stays in the server's log
        return problem(500, "internal", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")

    @app.post("/v1/intents", status_code=201, response_model=IntentRecord,
              responses={404: {"model": Problem, "description": "An unknown host, cell, switch, link or node"},
                         409: {"model": Problem, "description": "Conflicts with installed intents"}})
    def submit(body: Submission) -> IntentRecord:
        """Understand, compile, check and send one intent; its record (state compiled). Nothing is sent on error."""
        return service.submit(r, body.text, body.level, body.force, lm=lm)

    @app.get("/v1/intents", response_model=list[IntentRecord])
    def list_intents() -> list[IntentRecord]:
        """Every intent in the store, oldest first."""
        return IntentStore(r).all()

    @app.get("/v1/intents/{intent_id}", response_model=IntentRecord,
             responses={404: {"model": Problem, "description": "No such intent"}})
    def get_intent(intent_id: str) -> IntentRecord:
        record = IntentStore(r).get(intent_id)
        if record is None:
            raise IntentError("unknown_entity", f"no intent {intent_id!r}", field="intent_id")
        return record

    @app.delete("/v1/intents/{intent_id}", status_code=202, response_model=IntentRecord,
                responses={404: {"model": Problem, "description": "No such intent"}})
    def withdraw(intent_id: str) -> IntentRecord:
        """Send the withdrawal; the record as it was (the controller moves it to withdrawn once it removed it)."""
        return service.withdraw(r, intent_id)

    @app.post("/v1/ask", response_model=QueryAnswer)
    def ask(body: Question) -> QueryAnswer:
        """Answer a question about the network from live telemetry, forecasts, heartbeats and the intent store."""
        u = understand(body.text, lm=lm)
        if u.intent.action.value != "query":
            raise IntentError("invalid", "this is an intent, submit it", field="action",
                              question=f'netgpt intent submit "{body.text}"')
        result = answer(r, u.intent, plot_dir=plot_dir if body.plot else None, settings=settings)
        if result.plot:
            _prune(plot_dir)
            result = result.model_copy(update={"plot": f"/v1/plots/{Path(result.plot).name}"})
        return result

    @app.get("/v1/plots/{name}", response_class=FileResponse,
             responses={200: {"content": {"image/png": {}}}, 404: {"model": Problem, "description": "No such plot"}})
    def plot(name: str):
        path = plot_dir / name
        if not _PLOT_NAME.match(name) or not path.is_file():  # the pattern keeps the name inside plot_dir
            return problem(404, "not_found", f"no plot {name!r}")
        return FileResponse(path, media_type="image/png")

    @app.post("/v1/translate", response_model=list[dict[str, Any]])
    def translate(body: Text) -> list[dict]:
        """A flow-level sentence as ofctl_rest entries; nothing is sent."""
        return translate_to_flows(body.text)

    @app.post("/v1/parse", response_model=Reading)
    def parse(body: Text) -> Reading:
        """A high-level sentence as a HighLevelIntent, with who read it and how much of it; nothing is sent."""
        u = understand(body.text, lm=lm)
        return Reading(intent=u.intent, confidence=u.confidence, read_by=u.by, unread=u.unread)

    return app


def _prune(plot_dir: Path) -> None:
    for old in sorted(plot_dir.glob("*.png"), key=lambda p: p.stat().st_mtime)[:-KEEP_PLOTS]:
        old.unlink(missing_ok=True)
