"""The edge LM: the edge base model with its `complete` LoRA adapter, on the configured serving backend
(netgpt.models.backends: llama.cpp by default, torch as the reference)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from netgpt.edge_agent.collab.completion import LMText
from netgpt.models import student
from netgpt.models.backends import open_server
from netgpt.models.base import ModelError
from netgpt.models.serving import token_logprob


class EdgeLM:
    """The edge base model with its `complete` adapter (when loaded) on a serving backend (a TextServer)."""

    def __init__(self, server, adapter: str | None = None, answers: bool = True):
        self.server = server
        self.adapter = adapter if adapter in getattr(server, "adapters", {}) else None
        # Whether `answer` is the model's own answer: not for a task student, which only completes prompts.
        self.answers = answers

    @property
    def name(self) -> str:
        return self.server.name

    def generate(self, prompt: str, max_tokens: int = 48, stop_at_sentence: bool = False,
                 use_adapter: bool = True) -> LMText:
        """Greedy continuation of `prompt` and its mean token log-probability: as decoded where the backend gives
        them (llama.cpp), else from one extra forward pass (torch). `use_adapter` False: the base model alone."""
        budget = max(1, min(max_tokens, self.server.context_length - 8))
        prompt = self.server.keep_end(prompt, budget)
        adapter = self.adapter if use_adapter else None
        done = self.server.complete(prompt, adapter=adapter, max_tokens=budget)
        text = done.text.split("\n")[0].strip()
        if stop_at_sentence:
            for end in ".!?":
                if end in text:
                    text = text[:text.index(end) + 1]
        if not done.completion_tokens:
            return LMText("", done.prompt_tokens, 0, float("-inf"))
        if done.logprobs is not None:
            return LMText(text, done.prompt_tokens, done.completion_tokens, sum(done.logprobs) / len(done.logprobs))
        import torch  # heavy; loaded with the torch backend's model, so other agents never import it

        full = self.server.tokenizer(prompt + done.text, add_special_tokens=False)["input_ids"]
        n_prompt = done.prompt_tokens
        if len(full) > self.server.context_length:  # decoded bytes (U+FFFD) re-encode longer: no room to re-score
            return LMText(text, done.prompt_tokens, done.completion_tokens, float("-inf"))
        logits = self.server.logits(prompt + done.text, adapter=adapter)
        logprobs = torch.log_softmax(logits[n_prompt - 1:len(full) - 1], dim=-1)
        picked = logprobs.gather(1, torch.tensor(full[n_prompt:]).unsqueeze(1))
        mean = float(picked.mean()) if picked.numel() else float("-inf")
        return LMText(text, done.prompt_tokens, done.completion_tokens, mean)


    def choose(self, prompt: str, options: list[str]) -> tuple[int, LMText]:
        """Which of `options` (continuations of `prompt`, as training targets are written) the LM writes: greedy
        decoding kept to the options. Where they agree on the next token it is written in without asking the LM;
        where they part, the LM's most likely token among theirs is taken. So the text is always one of the options
        (true, when they are all true), in one LM call per point where they part, each reading only the tokens
        written since the last (llama.cpp's prefix cache; torch reads the whole sequence again). Returns its index
        and the text with the mean log-probability of the LM's choices only (not of the tokens written in: so not
        comparable with `generate`'s; 0, certain, when a single option left nothing to choose)."""
        tok = self.server.tokenizer
        options = list(dict.fromkeys(options))  # the same text twice would never part
        if not options:
            raise ValueError("choose: no options")
        seqs = [tok(o, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for o in options]
        room = max(map(len, seqs))
        ids = self.server.encode(self.server.keep_end(prompt, room), room)
        alive, new, lps = list(range(len(seqs))), [], []
        while True:
            nxt = {seqs[i][len(new)] for i in alive}
            token = next(iter(nxt))
            if len(nxt) > 1:
                logits = self.server.next_logits(ids + new, adapter=self.adapter)
                token = max(nxt, key=lambda t: logits[t])
                lps.append(token_logprob(logits, token))
            alive = [i for i in alive if seqs[i][len(new)] == token]
            if token == tok.eos_token_id:  # every option ends with it, and no two are the same: one is left
                break
            new.append(token)
        return alive[0], LMText(options[alive[0]], len(ids), len(new), float(np.mean(lps)) if lps else 0.0)

    def answer(self, question: str, max_tokens: int = 48) -> LMText:
        """The base model's own answer to `question` (no adapter: the `complete` adapter writes completions, not
        answers), through its chat template when it has one (SmolLM2-135M-Instruct), else as "Q: ...\nA:"."""
        if self.server.tokenizer.chat_template:
            prompt = self.server.chat_prompt([{"role": "system", "content": "Answer briefly, in English."},
                                              {"role": "user", "content": question}])
        else:
            prompt = f"Q: {question}\nA:"
        return self.generate(prompt, max_tokens=max_tokens, use_adapter=False)


def load_edge_lm(base: str, cache_dir: Path, adapter: Optional[Path], backend: str = "llamacpp", slots: int = 1):
    """The edge base on a serving backend, with the `complete` adapter when its folder exists. Never trains. `slots`
    (llama.cpp): contexts side by side, each with cores/slots threads (2 on 2 cores: one thread, which a machine
    shared with another busy job needs: two llama.cpp threads there wait on each other for seconds a token).

    `base` may also be a task student of the `complete` task (`netgpt models train --task complete --student`, saved
    in <cache>/models/complete-student): a model of its own, cut from the base and trained on the task, so it is served
    with no adapter (llama.cpp: as student.SERVE_AS)."""
    card = student.card_of(Path(base))  # {}: not a student
    if card.get("task") == "complete":
        if adapter is not None:
            raise ModelError(f"{base} is a student of the complete task: it takes no adapter")
        return EdgeLM(open_server(base, cache_dir, backend, slots=slots, build=False, gguf_type=student.SERVE_AS),
                      answers=False)
    if card:
        raise ModelError(f"{base} is a student of the {card.get('task')!r} task, not of 'complete'")
    server = open_server(base, cache_dir, backend, slots=slots, build=False)
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
