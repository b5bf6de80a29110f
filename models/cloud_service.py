"""The cloud LLM service: a FastAPI app speaking the OpenAI API over an AdapterServer.

    GET  /health                 liveness + what is loaded
    GET  /v1/models              the base and each adapter, as model ids
    POST /v1/chat/completions    messages -> answer; "stream": true sends server-sent events (chat.completion.chunk);
                                 "continue_final_message": true continues a final assistant message (as vLLM does)
    POST /v1/completions         prompt -> continuation (streaming too)

`model` in a request picks the adapter (or the base). Errors use OpenAI's shape {"error": {"message", "type", ...}}:
an over-length prompt is HTTP 400 (code context_length_exceeded), an unknown model 404. Handlers are plain `def`s, so
FastAPI runs them in its thread pool and the AdapterServer's lock serialises the model; the event loop keeps serving.
A generation whose client has gone (timed out, disconnected) stops within a fraction of a second, so it does not hold
the lock that the next requests wait on; past `max_queue` requests running or waiting, new ones get 429 at once.

Any other OpenAI-compatible endpoint (vLLM, Ollama) can be the cloud instead: clients are built by
netgpt.models.cloud_client from Settings.cloud_url and cloud_model (NETGPT_CLOUD_URL, NETGPT_CLOUD_MODEL).
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Annotated, Iterator, Literal, Optional, Union

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from pydantic import BaseModel, BeforeValidator, Field, StrictBool, StringConstraints, model_validator

from netgpt.models.base import ModelError
from netgpt.core.messages import first_error
from netgpt.models.serving import AdapterServer, Completion, PromptTooLong


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str


def _not_a_bool(value):
    if isinstance(value, bool):  # pydantic would read false as 0.0
        raise ValueError("must be a number, not a boolean")
    return value


Number = Annotated[float, BeforeValidator(_not_a_bool)]
Count = Annotated[int, Field(ge=1), BeforeValidator(_not_a_bool)]
Prompt = Annotated[str, StringConstraints(min_length=1)]


class StreamOptions(BaseModel):
    include_usage: StrictBool = False


class ChatRequest(BaseModel):
    model: Optional[str] = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: Optional[Count] = None
    max_completion_tokens: Optional[Count] = None
    temperature: Number = Field(0.0, ge=0, le=2)
    top_p: Number = Field(1.0, gt=0, le=1)
    stream: StrictBool = False
    stream_options: Optional[StreamOptions] = None
    # vLLM's extension: the last (assistant) message is the start of the answer and the model continues it; the
    # returned content is the continuation only.
    continue_final_message: StrictBool = False

    @model_validator(mode="after")
    def final_message_to_continue(self) -> "ChatRequest":
        if self.continue_final_message and self.messages[-1].role != "assistant":
            raise ValueError("continue_final_message needs the last message to be the assistant's")
        return self


class CompletionRequest(BaseModel):
    model: Optional[str] = None
    prompt: Union[Prompt, Annotated[list[Prompt], Field(min_length=1)]]
    max_tokens: Optional[Count] = None  # OpenAI's default for /v1/completions is 16
    temperature: Number = Field(0.0, ge=0, le=2)
    top_p: Number = Field(1.0, gt=0, le=1)
    stream: StrictBool = False
    stream_options: Optional[StreamOptions] = None


ERRORS = {200: {"description": "The answer; with \"stream\": true, server-sent events",
               "content": {"application/json": {}, "text/event-stream": {}}},
          400: {"description": "Bad request: not JSON, an empty or over-length prompt (OpenAI's error shape)"},
          404: {"description": "Unknown model"}, 422: {"description": "Invalid fields"},
          429: {"description": "Busy: too many requests running or waiting (Retry-After)"}}


def error(status: int, message: str, code: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"message": message, "type": kind, "param": None,
                                                               "code": code}})


def usage(c: Completion) -> dict:
    return {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
            "total_tokens": c.prompt_tokens + c.completion_tokens}


def sse(payload: dict) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def create_app(server: AdapterServer, default_max_tokens: int = 128, max_queue: int = 0) -> FastAPI:
    """`max_queue`: with this many requests already running or waiting for the model, a new one is refused at once
    with 429 and Retry-After (0: no cap), so that clients fall back instead of waiting out their timeouts."""
    app = FastAPI(title="NetGPT cloud LLM", version="1")

    def budget(prompt: str, requested: Optional[int], default: int) -> int:
        """An explicit max_tokens is honoured (or refused); the default shrinks to what the context has left."""
        if requested:
            return requested
        left = server.context_length - len(server.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        return max(1, min(default, left))

    def checked(model: Optional[str], prompt: str, max_tokens: int) -> Optional[JSONResponse]:
        """Validate before a streaming response starts: afterwards the status code can no longer change."""
        if max_queue and server.in_use >= max_queue:
            busy = error(429, f"the cloud LLM is busy: {server.in_use} requests are running or waiting; retry later",
                         "server_busy", "rate_limit_error")
            busy.headers["Retry-After"] = "1"
            return busy
        if model not in (None, server.name) and model not in server.adapters:
            return error(404, f"The model {model!r} does not exist; available: {', '.join(server.model_ids())}",
                         "model_not_found")
        try:
            server.encode(prompt, max_tokens)
        except PromptTooLong as exc:
            return error(400, str(exc), "context_length_exceeded")
        return None

    def run(request: Request, model: Optional[str], prompt: str, max_tokens: int, temperature: float,
            top_p: float) -> Completion:
        """Generate in this worker thread; stop early once the client has disconnected (timed out, gone): nobody
        would read the answer, and the model lock would keep the next requests waiting for it."""
        gone = lambda: anyio.from_thread.run(request.is_disconnected)  # noqa: E731  asks the event loop
        return server.complete(prompt, adapter=model, max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                               should_stop=gone)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "models": server.model_ids(), "context_length": server.context_length}

    @app.get("/v1/models")
    def list_models() -> dict:
        created = int(time.time())
        return {"object": "list", "data": [{"id": m, "object": "model", "created": created, "owned_by": "netgpt"}
                                           for m in server.model_ids()]}

    @app.post("/v1/chat/completions", responses=ERRORS)
    def chat(req: ChatRequest, request: Request):
        prompt = server.chat_prompt([m.model_dump() for m in req.messages], req.continue_final_message)
        max_tokens = budget(prompt, req.max_completion_tokens or req.max_tokens, default_max_tokens)
        if (bad := checked(req.model, prompt, max_tokens)) is not None:
            return bad
        rid, created, model = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time()), req.model or server.name
        if not req.stream:
            c = run(request, req.model, prompt, max_tokens, req.temperature, req.top_p)
            return {"id": rid, "object": "chat.completion", "created": created, "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": c.text},
                                 "finish_reason": c.finish_reason, "logprobs": None}],
                    "usage": usage(c)}

        def events() -> Iterator[str]:
            head = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model}
            yield sse({**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                            "finish_reason": None}]})
            for item in server.stream(prompt, adapter=req.model, max_tokens=max_tokens, temperature=req.temperature,
                                      top_p=req.top_p):
                if isinstance(item, Completion):
                    yield sse({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": item.finish_reason}]})
                    if req.stream_options and req.stream_options.include_usage:
                        yield sse({**head, "choices": [], "usage": usage(item)})
                else:
                    yield sse({**head, "choices": [{"index": 0, "delta": {"content": item}, "finish_reason": None}]})
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/completions", responses=ERRORS)
    def completions(req: CompletionRequest, request: Request):
        prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        max_tokens = min(budget(p, req.max_tokens, 16) for p in prompts)
        for prompt in prompts:
            if (bad := checked(req.model, prompt, max_tokens)) is not None:
                return bad
        rid, created, model = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time()), req.model or server.name
        if not req.stream:
            done = [run(request, req.model, p, max_tokens, req.temperature, req.top_p) for p in prompts]
            return {"id": rid, "object": "text_completion", "created": created, "model": model,
                    "choices": [{"index": i, "text": c.text, "finish_reason": c.finish_reason, "logprobs": None}
                                for i, c in enumerate(done)],
                    "usage": {k: sum(usage(c)[k] for c in done)
                              for k in ("prompt_tokens", "completion_tokens", "total_tokens")}}
        if len(prompts) != 1:
            return error(400, "streaming supports one prompt per request", "invalid_prompt")

        def events() -> Iterator[str]:
            head = {"id": rid, "object": "text_completion", "created": created, "model": model}
            for item in server.stream(prompts[0], adapter=req.model, max_tokens=max_tokens,
                                      temperature=req.temperature, top_p=req.top_p):
                if isinstance(item, Completion):
                    yield sse({**head, "choices": [{"index": 0, "text": "", "finish_reason": item.finish_reason,
                                                    "logprobs": None}]})
                    if req.stream_options and req.stream_options.include_usage:
                        yield sse({**head, "choices": [], "usage": usage(item)})
                else:
                    yield sse({**head, "choices": [{"index": 0, "text": item, "finish_reason": None,
                                                    "logprobs": None}]})
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.exception_handler(RequestValidationError)
    def invalid_fields(_request, exc: RequestValidationError) -> JSONResponse:
        return error(422, first_error(exc.errors()), "invalid_field")

    @app.exception_handler(StarletteHTTPException)
    def http_error(_request, exc: StarletteHTTPException) -> JSONResponse:
        """FastAPI's own errors (a body that is not JSON, an unknown path) in OpenAI's error shape."""
        response = error(exc.status_code, str(exc.detail), "invalid_request" if exc.status_code < 500 else "error")
        response.headers.update(getattr(exc, "headers", None) or {})  # e.g. Allow on a 405
        return response

    @app.exception_handler(ModelError)
    def model_error(_request, exc: ModelError) -> JSONResponse:
        return error(400, str(exc), "model_error")

    return app

