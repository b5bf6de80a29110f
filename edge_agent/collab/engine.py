"""Edge-cloud collaboration: one request through one of four modes (netgpt.core.messages.CollabMode).

  netgpt      the edge completes the prompt with the cell's location context, the cloud LLM answers it
  cloud-only  the raw prompt goes to the cloud (the paper's baseline)
  edge-only   the edge answers alone: exactly from the context for plain lookups, else with its own LM
  routed      the edge answers when it is confident (a context lookup, or its LM's mean token probability at or above
              `route_threshold`), otherwise the cloud answers a compact completion (as Hybrid LLM / RouteLLM route):
              the request and one bracketed line of the facts it needs, no edge draft

One request's trip is CollabEngine.handle, read top to bottom: the request's facts are selected once
(completion.select_facts: fact kinds, points of interest ranked against the request, the instant whose local time is
stated), and every output renders that one RequestFacts: the completed prompt and its system message, the
edge's exact or LM answer, the fact check of what the edge LM writes, and the facts-only answer when nothing else is
left. Cloud-only selects nothing unless the cloud fails and the edge answers after all.

Completed prompts (netgpt, routed) bring their own system message: the user's city and country, answer for that place,
in English; cloud-only keeps the generic SYSTEM_PROMPT. The cloud answers the question in its own words: it is not told
how to begin, and its answer is not asked again when it leaves the place out. The prefill mode (`prefill_opener`, off
by default; needs a cloud that speaks vLLM's continue_final_message, `cloud_prefill`) begins the cloud's answer with
the edge's opener ("In Osaka, Japan, at 20:02, Kuromon Market"); that opener is edge text: the response reports it in
`answer_edge_prefix` (flag `edge_prefilled_opener`), and `cloud_generated_text` leaves it out.

The cloud is any OpenAI-compatible endpoint, called with the official `openai` client, a timeout and no retries. When
it cannot be reached, fails (5xx) or is busy (408, 429) the edge answers instead and the response says so (flag
`cloud_unreachable_edge_answer`); a cloud that refuses the request (other 4xx) raises CloudRejected, which the HTTP
layer turns into a 502 with the cloud's reason.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import openai

from netgpt.core.messages import CollabMode, EdgePromptRequest, EdgePromptResponse, ServiceClass
from netgpt.edge_agent.collab.completion import (CompletedPrompt, Embed, RequestFacts, complete_prompt,
                                                 context_answer, known_facts, select_facts)
from netgpt.edge_agent.collab.edge_lm import EdgeLM
from netgpt.edge_agent.location.cells import CellContext
from netgpt.edge_agent.user_intent.classifier import embed_texts
from netgpt.models.cloud_client import openai_client

SYSTEM_PROMPT = "You are a helpful assistant. Always answer in English, briefly."  # cloud-only; completions bring their own
CLOUD_DOWN = "cloud_unreachable_edge_answer"
PREFILLED = "edge_prefilled_opener"  # the answer begins with the edge's opener (prefill mode), the cloud continued it
EDGE_LM = "edge_lm_answer"
FACTS_ONLY = "edge_facts_only"  # the edge could not answer: the response states only the cell's facts


def cloud_generated_text(resp: EdgePromptResponse) -> str:
    """The part of a response's answer the cloud generated: "" when the edge answered, and never the edge's prefilled
    opener. What the bench scores."""
    if resp.answered_by != "cloud":
        return ""
    prefix = resp.answer_edge_prefix
    if prefix and resp.answer.startswith(prefix):
        return resp.answer[len(prefix):].strip()
    return resp.answer


class CloudUnavailable(RuntimeError):
    """Connection refused, timed out, or a 5xx from the cloud."""


class CloudRejected(RuntimeError):
    """The cloud refused the request (4xx): its message is passed on."""


# --- the cloud LLM ----------------------------------------------------------------------------------------------------


@dataclass
class CloudAnswer:
    text: str
    tokens_in: int
    tokens_out: int
    ms: float


class CloudClient:
    def __init__(self, url: str, model: str, timeout_s: float = 30.0, max_tokens: int = 96):
        self.url, self.model, self.max_tokens = url, model, max_tokens
        self.client = openai_client(url, timeout_s, max_retries=0)  # no retries: the edge answers instead

    def ask(self, prompt: str, system: str | None = None, prefill: str | None = None) -> CloudAnswer:
        """The cloud's answer to `prompt`. `prefill`: the answer starts with this text and the cloud continues it
        (vLLM's continue_final_message, which `netgpt cloud serve` also speaks); the returned text includes it."""
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
    """`embed`: texts -> unit vectors, for ranking the points of interest against a request (default: MiniLM)."""

    def __init__(self, cells: dict[str, CellContext], lm: EdgeLM | None, cloud: CloudClient | None,
                 route_threshold: float = 1.0, edge_max_tokens: int = 48, draft_tokens: int = 12, source: str = "",
                 cloud_prefill: bool = True, embed: Embed = embed_texts, prefill_opener: bool = False,
                 constrained: bool = False):
        self.cells, self.lm, self.cloud, self.cloud_prefill = cells, lm, cloud, cloud_prefill
        self.constrained = constrained  # the LM's sentence decoded among the task's true sentences (complete_prompt)
        self.prefill_opener = prefill_opener and cloud_prefill  # the prefill mode needs a cloud that continues answers
        self.route_threshold, self.edge_max_tokens, self.draft_tokens = route_threshold, edge_max_tokens, draft_tokens
        self.source, self.embed = source, embed

    def edge_answer(self, facts: RequestFacts, completed: str) -> EdgeAnswer:
        """The edge's own answer: exact from the context for a plain lookup, else its LM's answer to `completed` (the
        completed prompt), cleaned of what the context contradicts, else only the facts the request needs."""
        exact = context_answer(facts)
        if exact is not None:
            return EdgeAnswer(exact, 1.0)
        if self.lm is None or not self.lm.answers:  # no LM, or a student that only completes prompts
            return EdgeAnswer(f"This edge node has no language model to answer this. {known_facts(facts)}", 0.0,
                              source="none", facts_only=True)
        out = self.lm.answer(completed, max_tokens=self.edge_max_tokens)
        # The edge LM is small and invents places and times; what the cell's context contradicts is removed, as from
        # its drafts. An answer left empty is replaced by what the node knows that bears on the request.
        clean, removed = facts.scrub(out.text)
        facts_only = bool(removed) and not clean
        if facts_only:
            clean = f"The edge model has no reliable answer to this. {known_facts(facts)}"
        return EdgeAnswer(clean, 0.0 if removed else out.confidence, out.tokens_in, out.tokens_out, "lm",
                          facts_removed=bool(removed), facts_only=facts_only)

    def may_route(self, facts: RequestFacts) -> bool:
        """Whether the edge's answer can reach the routing threshold: an exact lookup (confidence 1) always can; the
        LM's answer (its geometric-mean token probability, below 1) only under a threshold below 1. At the default
        1.0 the LM's answer would be computed and always thrown away, so it is not computed."""
        return context_answer(facts) is not None or self.route_threshold < 1.0

    def handle(self, req: EdgePromptRequest, service: ServiceClass | None = None,
               now: datetime | float | None = None, request_id: str | None = None) -> EdgePromptResponse:
        """Serve one request. Raises KeyError for an unknown cell and CloudRejected when the cloud refuses."""
        t0 = time.perf_counter()
        ctx = self.cells[req.cell]
        now = time.time() if now is None else now
        rid = request_id or uuid.uuid4().hex[:16]
        text = req.text.strip()

        # What the request is told about its cell is selected here, once, and every output renders that selection: the
        # completed prompt, its system message (and the opener in the prefill mode), and the edge's own answer. Cloud-only sends the raw prompt
        # with the generic system message, so it selects only if the edge has to answer after all (answer_at_edge).
        facts: RequestFacts | None = None
        done = CompletedPrompt(text, [])  # cloud-only: the raw prompt, no facts, the generic system message
        edge_ms = 0.0
        if req.mode != CollabMode.cloud_only:
            facts = select_facts(text, ctx, now, service, self.embed)
            done = complete_prompt(facts, self.lm, self.draft_tokens, compact=req.mode == CollabMode.routed,
                                   prefill=self.prefill_opener, constrained=self.constrained)
            edge_ms = (time.perf_counter() - t0) * 1000
        flags = list(done.flags)
        edge_in, edge_out = done.edge_tokens_in, done.edge_tokens_out
        edge_conf: float | None = None
        edge: EdgeAnswer | None = None

        def answer_at_edge() -> EdgeAnswer:
            """The edge's own answer, computed at most once per request (routed mode may need it again when the
            cloud turns out to be down), its cost added to the request's edge cost."""
            nonlocal facts, edge, edge_in, edge_out, edge_ms, edge_conf
            if edge is None:
                t_edge = time.perf_counter()
                if facts is None:  # cloud-only, and the cloud could not answer
                    facts = select_facts(text, ctx, now, service, self.embed)
                edge = self.edge_answer(facts, done.text)
                edge_in, edge_out = edge_in + edge.tokens_in, edge_out + edge.tokens_out
                edge_ms += (time.perf_counter() - t_edge) * 1000
                edge_conf = edge.confidence
            return edge

        answer: EdgeAnswer | None = None
        if req.mode == CollabMode.edge_only or (req.mode == CollabMode.routed and self.may_route(facts)):
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
                prefix = done.opener if done.prefilled else None
                cloud = self.cloud.ask(done.text, done.system, prefill=prefix)
                if prefix:
                    flags.append(PREFILLED)
            except CloudUnavailable as exc:
                answer = answer_at_edge()
                flags += [CLOUD_DOWN, f"cloud_error: {exc}", *answer.flags()]

        return EdgePromptResponse(
            source=self.source, request_id=rid, mode=req.mode, answer=cloud.text if cloud else answer.text,
            completed_prompt=done.text, answered_by="cloud" if cloud else "edge",
            edge_tokens_in=edge_in, edge_tokens_out=edge_out,
            cloud_tokens_in=cloud.tokens_in if cloud else 0, cloud_tokens_out=cloud.tokens_out if cloud else 0,
            edge_ms=round(edge_ms, 2), cloud_ms=round(cloud.ms, 2) if cloud else 0.0,
            total_ms=round((time.perf_counter() - t0) * 1000, 2), flags=flags, location_facts=done.fact_kinds,
            edge_confidence=edge_conf, answer_edge_prefix=done.opener if cloud and done.prefilled else "",
            edge_lm_draft=done.draft)
