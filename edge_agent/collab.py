"""Edge-cloud collaboration: one request through one of four modes (netgpt.messages.CollabMode).

  netgpt      the edge completes the prompt with the cell's location context, the cloud LLM answers it
  cloud-only  the raw prompt goes to the cloud (the paper's baseline)
  edge-only   the edge answers alone: exactly from the context for plain lookups, else with its own LM
  routed      the edge answers when it is confident (a context lookup, or its LM's mean token probability at or above
              `route_threshold`), otherwise the cloud answers a compact completion (as Hybrid LLM / RouteLLM route):
              the request, the best place's note, and the answer begun by the opener with the facts the request needs
              (with `cloud_prefill`; else one bracketed fact line and "Start with:"), no edge draft

Completed prompts (netgpt, routed) bring their own system message: the user's city and country, answer for that place,
in English; cloud-only keeps the generic SYSTEM_PROMPT. They also ask the cloud to begin its answer with an opener
("In Osaka, Japan, at 20:02, Kuromon Market"). An answer that names neither the city nor the country (SmolLM2-135M
sometimes refuses, or echoes the question) is asked once more with the opener as the start of the answer, which the
cloud continues (vLLM's continue_final_message; flag `cloud_reasked_with_opener`, tokens of both calls counted). Turn
this off (`cloud_prefill`) for a cloud that does not speak that extension.

The cloud is any OpenAI-compatible endpoint, called with the official `openai` client, a timeout and no retries. When
it cannot be reached, fails (5xx) or is busy (408, 429) the edge answers instead and the response says so (flag
`cloud_unreachable_edge_answer`); a cloud that refuses the request (other 4xx) raises CloudRejected, which the HTTP
layer turns into a 502 with the cloud's reason.
"""
from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from edge_agent.collab_completion import (LMText, complete_prompt, context_answer, context_sentence, rank_places,
                                         select_fact_kinds)
from edge_agent.location import CellContext
from edge_agent.location_check import normalise, scrub
from netgpt.messages import CollabMode, EdgePromptRequest, EdgePromptResponse, ServiceClass

SYSTEM_PROMPT = "You are a helpful assistant. Always answer in English, briefly."  # cloud-only; completions bring their own
CLOUD_DOWN = "cloud_unreachable_edge_answer"
REASKED = "cloud_reasked_with_opener"
EDGE_LM = "edge_lm_answer"
FACTS_ONLY = "edge_facts_only"  # the edge could not answer: the response states only the cell's facts


def states_place(answer: str, ctx: CellContext) -> bool:
    """Whether an answer names the cell's city (or country): the least a personalised answer does."""
    text = normalise(answer)
    return any(re.search(rf"\b{re.escape(normalise(name))}\b", text) for name in (ctx.city, ctx.country))


class CloudUnavailable(RuntimeError):
    """Connection refused, timed out, or a 5xx from the cloud."""


class CloudRejected(RuntimeError):
    """The cloud refused the request (4xx): its message is passed on."""


# --- the edge LM ------------------------------------------------------------------------------------------------------


class EdgeLM:
    """The edge base model with its `complete` adapter (when loaded) on a models.serving.AdapterServer."""

    def __init__(self, server, adapter: str | None = None):
        self.server = server
        self.adapter = adapter if adapter in getattr(server, "adapters", {}) else None

    @property
    def name(self) -> str:
        return self.server.name

    def generate(self, prompt: str, max_tokens: int = 48, stop_at_sentence: bool = False) -> LMText:
        """Greedy continuation of `prompt` and its mean token log-probability (one extra forward pass)."""
        import torch

        budget = max(1, min(max_tokens, self.server.context_length - 8))
        prompt = self.server.keep_end(prompt, budget)
        done = self.server.complete(prompt, adapter=self.adapter, max_tokens=budget)
        text = done.text.split("\n")[0].strip()
        if stop_at_sentence:
            for end in ".!?":
                if end in text:
                    text = text[:text.index(end) + 1]
        if not done.completion_tokens:
            return LMText("", done.prompt_tokens, 0, float("-inf"))
        full = self.server.tokenizer(prompt + done.text, add_special_tokens=False)["input_ids"]
        n_prompt = done.prompt_tokens
        logits = self.server.logits(prompt + done.text, adapter=self.adapter)
        logprobs = torch.log_softmax(logits[n_prompt - 1:len(full) - 1], dim=-1)
        picked = logprobs.gather(1, torch.tensor(full[n_prompt:]).unsqueeze(1))
        mean = float(picked.mean()) if picked.numel() else float("-inf")
        return LMText(text, done.prompt_tokens, done.completion_tokens, mean)


# --- the cloud LLM ----------------------------------------------------------------------------------------------------


@dataclass
class CloudAnswer:
    text: str
    tokens_in: int
    tokens_out: int
    ms: float


class CloudClient:
    def __init__(self, url: str, model: str, timeout_s: float = 30.0, max_tokens: int = 96):
        from openai import OpenAI

        self.url, self.model, self.max_tokens = url, model, max_tokens
        self.client = OpenAI(base_url=url, api_key="not-needed-offline", timeout=timeout_s, max_retries=0)

    def ask(self, prompt: str, system: str | None = None, prefill: str | None = None) -> CloudAnswer:
        """The cloud's answer to `prompt`. `prefill`: the answer starts with this text and the cloud continues it
        (vLLM's continue_final_message, which `netgpt cloud serve` also speaks); the returned text includes it."""
        import openai

        t0 = time.perf_counter()
        messages = [{"role": "system", "content": system or SYSTEM_PROMPT}, {"role": "user", "content": prompt}]
        extra = None
        if prefill:
            messages.append({"role": "assistant", "content": prefill})
            extra = {"continue_final_message": True, "add_generation_prompt": False}
        try:
            out = self.client.chat.completions.create(model=self.model, max_tokens=self.max_tokens, temperature=0.0,
                                                      messages=messages, extra_body=extra)
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:  # APITimeoutError is a connection error
            raise CloudUnavailable(f"cloud LLM at {self.url} unreachable: {type(exc).__name__}") from exc
        except openai.APIStatusError as exc:
            if exc.status_code >= 500 or exc.status_code in (408, 429):  # failed, timed out, busy or rate-limited
                raise CloudUnavailable(f"cloud LLM at {self.url} failed with HTTP {exc.status_code}") from exc
            raise CloudRejected(f"cloud LLM refused the request (HTTP {exc.status_code}): {exc.message}") from exc
        usage = out.usage
        text = out.choices[0].message.content or ""
        if prefill:
            text = prefill + ("" if text[:1].isspace() or text[:1] in ",.;:!?" else " ") + text
        return CloudAnswer(text, usage.prompt_tokens if usage else 0,
                           usage.completion_tokens if usage else 0, (time.perf_counter() - t0) * 1000)


# --- one request through one mode ------------------------------------------------------------------------------------


@dataclass
class EdgeAnswer:
    text: str
    confidence: float
    tokens_in: int = 0
    tokens_out: int = 0
    source: str = "context"  # context | lm | none
    facts_removed: bool = False  # sentences of the LM's answer that the cell's context contradicts were removed
    facts_only: bool = False  # no answer to the request, only the cell's facts that bear on it

    def flags(self) -> list[str]:
        """What the response says about this edge answer."""
        named = [(self.source == "lm", EDGE_LM), (self.facts_removed, "edge_answer_fact_removed"),
                 (self.facts_only, FACTS_ONLY)]
        return [flag for on, flag in named if on]


class CollabEngine:
    def __init__(self, cells: dict[str, CellContext], lm: EdgeLM | None, cloud: CloudClient | None,
                 route_threshold: float = 1.0, edge_max_tokens: int = 48, draft_tokens: int = 12, source: str = "",
                 cloud_prefill: bool = True):
        self.cells, self.lm, self.cloud, self.cloud_prefill = cells, lm, cloud, cloud_prefill
        self.route_threshold, self.edge_max_tokens, self.draft_tokens = route_threshold, edge_max_tokens, draft_tokens
        self.source = source

    def edge_answer(self, text: str, completed: str, ctx: CellContext, now,
                    places: list[tuple[str, float]] | None = None) -> EdgeAnswer:
        """`places`: the completion's ranking of the points of interest (ranked here when there was no completion)."""
        exact = context_answer(text, ctx, now)
        if exact is not None:
            return EdgeAnswer(exact, 1.0)
        if self.lm is None:
            known = self.known(text, ctx, now, places)
            return EdgeAnswer(f"This edge node has no language model to answer this. {known}", 0.0, source="none",
                              facts_only=True)
        out = self.lm.generate(f"Q: {completed}\nA:", max_tokens=self.edge_max_tokens)
        # The edge LM is small and invents places and times; what the cell's context contradicts is removed, as from
        # its drafts. An answer left empty is replaced by what the node knows that bears on the request.
        clean, removed = scrub(out.text, ctx, now, also_allowed=text)
        facts_only = bool(removed) and not clean
        if facts_only:
            clean = f"The edge model has no reliable answer to this. {self.known(text, ctx, now, places)}"
        return EdgeAnswer(clean, 0.0 if removed else out.confidence, out.tokens_in, out.tokens_out, "lm",
                          facts_removed=bool(removed), facts_only=facts_only)

    @staticmethod
    def known(text: str, ctx: CellContext, now, places: list[tuple[str, float]] | None = None) -> str:
        """The facts of the cell that the request needs (as the completion selects them), addressed to the user."""
        places = places if places is not None else rank_places(text, ctx)
        return "What this node knows: " + context_sentence(ctx, select_fact_kinds(text, places=places), now,
                                                            [name for name, _ in places], to_user=True)

    def handle(self, req: EdgePromptRequest, service: ServiceClass | None = None,
               now: datetime | float | None = None, request_id: str | None = None) -> EdgePromptResponse:
        """Serve one request. Raises KeyError for an unknown cell and CloudRejected when the cloud refuses."""
        t0 = time.perf_counter()
        ctx = self.cells[req.cell]
        now = time.time() if now is None else now
        rid = request_id or uuid.uuid4().hex[:16]
        text = req.text.strip()
        flags: list[str] = []
        edge_in = edge_out = 0
        edge_ms = 0.0
        completed, kinds, edge_conf, system, start, prefilled, places = text, [], None, None, "", False, None
        if req.mode != CollabMode.cloud_only:
            done = complete_prompt(text, ctx, now, service, self.lm, self.draft_tokens,
                                   compact=req.mode == CollabMode.routed, prefill=self.cloud_prefill)
            completed, kinds, system, start = done.text, done.fact_kinds, done.system, done.opener
            prefilled, places = done.prefilled, done.places
            edge_in, edge_out, flags = done.edge_tokens_in, done.edge_tokens_out, list(done.flags)
            edge_ms = (time.perf_counter() - t0) * 1000

        edge: EdgeAnswer | None = None

        def answer_at_edge() -> EdgeAnswer:
            """The edge's own answer, computed at most once per request (routed mode may need it again when the
            cloud turns out to be down), its cost added to the request's edge cost."""
            nonlocal edge, edge_in, edge_out, edge_ms, edge_conf
            if edge is None:
                t_edge = time.perf_counter()
                edge = self.edge_answer(text, completed, ctx, now, places)
                edge_in, edge_out = edge_in + edge.tokens_in, edge_out + edge.tokens_out
                edge_ms += (time.perf_counter() - t_edge) * 1000
                edge_conf = edge.confidence
            return edge

        answer: EdgeAnswer | None = None
        if req.mode in (CollabMode.edge_only, CollabMode.routed):
            answer = answer_at_edge()
            if req.mode == CollabMode.routed and answer.confidence < self.route_threshold:
                answer = None  # not confident: the cloud answers
            else:
                flags += answer.flags()

        cloud: CloudAnswer | None = None
        if answer is None:
            try:
                if self.cloud is None:
                    raise CloudUnavailable("no cloud LLM configured")
                cloud = self.cloud.ask(completed, system, prefill=start if prefilled else None)
                if start and self.cloud_prefill and not prefilled and not states_place(cloud.text, ctx):
                    # The answer ignores the place it was given (a refusal, an echo of the question): ask once more
                    # with the answer begun by the opener, which the cloud continues.
                    again = self.cloud.ask(completed, system, prefill=start)
                    cloud = CloudAnswer(again.text, cloud.tokens_in + again.tokens_in,
                                        cloud.tokens_out + again.tokens_out, cloud.ms + again.ms)
                    flags.append(REASKED)
            except CloudUnavailable as exc:
                answer = answer_at_edge()
                flags += [CLOUD_DOWN, f"cloud_error: {exc}", *answer.flags()]

        return EdgePromptResponse(
            source=self.source, request_id=rid, mode=req.mode, answer=cloud.text if cloud else answer.text,
            completed_prompt=completed, answered_by="cloud" if cloud else "edge",
            edge_tokens_in=edge_in, edge_tokens_out=edge_out,
            cloud_tokens_in=cloud.tokens_in if cloud else 0, cloud_tokens_out=cloud.tokens_out if cloud else 0,
            edge_ms=round(edge_ms, 2), cloud_ms=round(cloud.ms, 2) if cloud else 0.0,
            total_ms=round((time.perf_counter() - t0) * 1000, 2), flags=flags, location_facts=kinds,
            edge_confidence=edge_conf)
