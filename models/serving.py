"""Serving: one base model with several LoRA adapters loaded, the adapter chosen per request.

`TextServer` is what every backend shares (tokenizer, prompts, adapter names, usage counters); `AdapterServer` is the
torch backend below, `netgpt.models.llamacpp.LlamaCppServer` the llama.cpp one, and `netgpt.models.backends` chooses.

In the torch backend, peft keeps every loaded adapter in the same module tree and `set_adapter` picks the active one, so the active adapter
is shared state: a lock makes "choose adapter + run the model" one step, which keeps concurrent requests from running
with each other's adapter. Requests are served one at a time per base (on 2 CPU cores, batching would not help much).

torch, transformers and peft are imported inside the methods that use them: importing this module must not load them.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from netgpt.models import tasks
from netgpt.models.base import CLOUD_DEFAULT, CLOUD_MODEL_NAME, ModelError, context_length, describe
from netgpt.models.lora import check_adapter


GREEDY_BELOW = 1e-5  # temperatures under this decode greedily, as vLLM does


def token_logprob(logits: np.ndarray, token: int) -> float:
    """log p(token) under next-token `logits` (the log-softmax at `token`): shifted by the maximum, so the sum cannot
    overflow, and summed in float64, the logits left as the backends give them (float32). Every decoding loop's
    confidence is this: a float64 copy and scipy's logsumexp over the 49k-token vocabulary cost ~1.5 ms a call here,
    this ~0.05 ms."""
    shifted = logits - logits.max()
    return float(shifted[token]) - float(np.log(np.exp(shifted).sum(dtype=np.float64)))


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end token), "length" (max_tokens reached) or "cancelled" (nobody waits for it)
    logprobs: Optional[list[float]] = None  # per generated token, where the backend computes them while decoding


class PromptTooLong(ModelError):
    """The prompt leaves no room for a completion within the model's context length."""


class TextServer:
    """What every serving backend shares: the Hugging Face tokenizer (prompts, chat templates and token counts are the
    same whatever runs the model), the adapter names, and the counters the web layer reads."""

    def __init__(self, tokenizer, name: str, context_length: int):
        self.tokenizer = tokenizer
        self.name = name
        self.context_length = context_length
        self.adapters: dict[str, dict] = {}  # name -> card
        self.cancelled = 0  # generations stopped early because their caller had gone
        self.in_use = 0  # requests running on the model or waiting for it (the web layer refuses new ones past a cap)
        self._count_lock = threading.Lock()

    def model_ids(self) -> list[str]:
        return [self.name, *self.adapters]

    def check_model(self, adapter: Optional[str]) -> None:
        if adapter not in (None, self.name) and adapter not in self.adapters:
            raise ModelError(f"unknown model {adapter!r}; loaded: {', '.join(self.model_ids())}")

    @contextmanager
    def counted(self) -> Iterator[None]:
        """Count a request as in use (running or waiting) for as long as it holds or waits for the model."""
        with self._count_lock:
            self.in_use += 1
        try:
            yield
        finally:
            with self._count_lock:
                self.in_use -= 1

    def encode(self, prompt: str, max_tokens: int) -> list[int]:
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ModelError("the prompt is empty: there is nothing to continue")
        if len(ids) + max(max_tokens, 1) > self.context_length:
            raise PromptTooLong(f"this model's maximum context length is {self.context_length} tokens; the prompt "
                                f"has {len(ids)} tokens and {max_tokens} were requested for the completion")
        return ids

    def keep_end(self, prompt: str, max_tokens: int) -> str:
        """`prompt` cut from the start until it and `max_tokens` fit the context (the end holds the request). Cut by
        tokens, then checked again: a cut inside a multi-byte character decodes to U+FFFD, which can re-encode longer."""
        keep = self.context_length - max(max_tokens, 1)
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        while keep > 0 and len(ids) > self.context_length - max(max_tokens, 1):
            prompt = self.tokenizer.decode(ids[-keep:])
            ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            keep -= 4
        return prompt

    def chat_prompt(self, messages: list[dict], continue_final: bool = False) -> str:
        """The model's prompt for a conversation. `continue_final`: the last message is the beginning of the
        assistant's answer, which the model continues (vLLM's continue_final_message), instead of a new turn."""
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                      add_generation_prompt=not continue_final,
                                                      continue_final_message=continue_final)
        if continue_final:
            *head, last = messages
            return "".join(f"{m['role']}: {m['content']}\n" for m in head) + f"assistant: {last['content']}"
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"


class AdapterServer(TextServer):
    """The torch backend: transformers `generate` on the fp32 model, with peft adapters."""

    def __init__(self, model, tokenizer, name: Optional[str] = None):
        super().__init__(tokenizer, name or _base_name(model), context_length(model, tokenizer))
        self.base = model
        self.model = model  # becomes the PeftModel once an adapter is loaded
        self.lock = threading.Lock()

    # --- adapters -----------------------------------------------------------------------------------------------------

    def load_adapter(self, name: str, path: Path) -> dict:
        """Check the adapter was made for this base, then load it under `name`. Returns its card."""
        from peft import PeftModel

        if name == self.name or name in self.adapters:
            raise ModelError(f"an adapter or base named {name!r} is already loaded")
        card = check_adapter(self.base, Path(path))
        with self.lock:
            try:
                if self.model is self.base:
                    self.model = PeftModel.from_pretrained(self.base, str(path), adapter_name=name)
                else:
                    self.model.load_adapter(str(path), adapter_name=name)
            except (RuntimeError, ValueError, KeyError) as exc:  # shapes or module names that do not fit this base
                raise ModelError(f"adapter {name!r} does not fit base {self.name!r}: "
                                 f"{str(exc).strip().splitlines()[0]}") from exc
            self.model.eval()
            self.adapters[name] = card
        return card

    @contextmanager
    def _using(self, adapter: Optional[str]) -> Iterator:
        """Hold the lock with `adapter` active (None or the base's name: no adapter)."""
        self.check_model(adapter)
        with self.counted(), self.lock:
            if self.model is self.base:
                yield self.model
            elif adapter in (None, self.name):
                with self.model.disable_adapter():
                    yield self.model
            else:
                self.model.set_adapter(adapter)
                yield self.model

    # --- inference ----------------------------------------------------------------------------------------------------

    def logits(self, prompt: str, adapter: Optional[str] = None):
        """Next-token logits for the whole prompt (for tests and diagnostics)."""
        import torch

        ids = torch.tensor([self.tokenizer(prompt, add_special_tokens=False)["input_ids"]])
        with self._using(adapter) as model, torch.no_grad():
            return model(input_ids=ids).logits[0].clone()

    def next_logits(self, ids: list[int], adapter: Optional[str] = None):
        """The next-token logits after the token ids `ids`, as float32 numpy (what tests compare backends with)."""
        import torch

        with self._using(adapter) as model, torch.no_grad():
            return model(input_ids=torch.tensor([list(ids)])).logits[0, -1].float().numpy()

    def _generate_kwargs(self, ids: list[int], max_tokens: int, temperature: float, top_p: float,
                         stop: "_StopWhen") -> dict:
        import torch
        from transformers import StoppingCriteriaList

        sample = temperature >= GREEDY_BELOW  # a temperature of 1e-38 would overflow the softmax into NaNs
        return {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
                "max_new_tokens": max_tokens, "do_sample": sample, "temperature": temperature if sample else None,
                "top_p": top_p if sample else None, "top_k": None, "stopping_criteria": StoppingCriteriaList([stop]),
                "pad_token_id": self.tokenizer.pad_token_id, "eos_token_id": self.tokenizer.eos_token_id}

    def _finished(self, ids: list[int], out, max_tokens: int, stop: "_StopWhen",
                  text: Optional[str] = None) -> Completion:
        new = out[0, len(ids):].tolist()
        ended = bool(new) and new[-1] == self.tokenizer.eos_token_id
        if stop.fired:
            self.cancelled += 1
        reason = "cancelled" if stop.fired else "stop" if ended or len(new) < max_tokens else "length"
        return Completion(self.tokenizer.decode(new, skip_special_tokens=True) if text is None else text, len(ids),
                          len(new), reason)

    def complete(self, prompt: str, adapter: Optional[str] = None, max_tokens: int = 64, temperature: float = 0.0,
                 top_p: float = 1.0, should_stop: Optional[Callable[[], bool]] = None) -> Completion:
        """Greedy (temperature 0) or sampled completion. `should_stop` is asked a few times a second during
        generation (e.g. "has the HTTP client gone?"); when it says so, generation ends early (finish "cancelled")."""
        import torch

        ids = self.encode(prompt, max_tokens)
        stop = _StopWhen(should_stop)
        with self._using(adapter) as model, torch.no_grad():
            out = model.generate(**self._generate_kwargs(ids, max_tokens, temperature, top_p, stop))
        return self._finished(ids, out, max_tokens, stop)

    def stream(self, prompt: str, adapter: Optional[str] = None, max_tokens: int = 64, temperature: float = 0.0,
               top_p: float = 1.0) -> Iterator[str | Completion]:
        """Yield text pieces as they are generated, then a final Completion with the counts (text = whole answer).
        A consumer that stops iterating (a client that went away) stops the generation too."""
        import torch
        from transformers import TextIteratorStreamer

        ids = self.encode(prompt, max_tokens)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=300)
        abandoned = threading.Event()
        stop = _StopWhen(abandoned.is_set, every_s=0.0)
        result: dict = {}

        def run() -> None:
            try:
                with self._using(adapter) as model, torch.no_grad():
                    result["out"] = model.generate(streamer=streamer,
                                                   **self._generate_kwargs(ids, max_tokens, temperature, top_p, stop))
            except BaseException as exc:  # surfaced to the consumer below instead of dying silently in the thread
                result["error"] = exc
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        pieces, read_all = [], False
        try:
            for piece in streamer:
                if piece:
                    pieces.append(piece)
                    yield piece
            read_all = True
        finally:  # also when the consumer closes this generator early: the model lock is freed at the next token
            if not read_all:
                abandoned.set()
            worker.join()
            if not read_all and stop.fired:
                self.cancelled += 1
        if "error" in result:
            raise result["error"]
        yield self._finished(ids, result["out"], max_tokens, stop, "".join(pieces))

    def info(self) -> dict:
        return {**describe(self.base), "name": self.name, "context_length": self.context_length,
                "adapters": {n: {"task": c.get("task"), "metrics": c.get("metrics")} for n, c in self.adapters.items()}}


def served_metric(server: TextServer, adapter: Optional[str], task: str, examples: list) -> float:
    """A task's metric (models/tasks.py: exact match, accuracy, or MAE for forecast) over greedy answers of a served
    model, whatever its backend: what an exported adapter is checked against the peft original with."""
    longest = max(len(server.tokenizer(e.target, add_special_tokens=False)["input_ids"]) for e in examples)
    scores = [tasks.score(task, server.complete(e.prompt, adapter=adapter, max_tokens=longest + 2).text, e)
              for e in examples]
    return sum(scores) / len(scores)


class _StopWhen:
    """A transformers stopping criterion that asks `should_stop` (at most every `every_s` seconds: the question may
    cost a round trip to the web server's event loop) and remembers whether it fired."""

    def __init__(self, should_stop: Optional[Callable[[], bool]], every_s: float = 0.2):
        self.should_stop, self.every_s, self.fired, self.asked_at = should_stop, every_s, False, float("-inf")

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        if self.should_stop is not None and not self.fired and time.monotonic() - self.asked_at >= self.every_s:
            self.asked_at = time.monotonic()
            self.fired = bool(self.should_stop())
        return torch.full((input_ids.shape[0],), self.fired, dtype=torch.bool, device=input_ids.device)


def _base_name(model) -> str:
    source = getattr(model, "netgpt_source", None) or model.config._name_or_path or "base"
    return CLOUD_MODEL_NAME if source == CLOUD_DEFAULT else Path(str(source)).name
