"""A task student cut from a base: a few of its blocks, every one of them trained on the task.

    cfg = StudentConfig(task="operator-intent", keep=(0, 1, 2, 3, 4, 5, 6, 7, 28, 29))
    result = train_student(model, tokenizer, cfg, out_dir, data=(train, eval, provenance))

Where a task needs an answer in well under the base's latency (the operator-intent reader: < 100 ms a sentence on two
cores, where SmolLM2-135M with a LoRA adapter takes ~200 ms), a model of fewer blocks does the same narrow job. The
student keeps the base's first blocks and its last ones (its embeddings, final norm and tied output head too), in their
order; dropping the middle of the stack hurt least before training (eval loss on 64 generated intent sentences:
SmolLM2's 30 blocks 5.27; first 8 21.6, first 10 24.3; first 7 + last 16.8 to 18.5, first 6 + last 2 16.8). Cut, it is
unusable, so every kept block and the final norm are trained on the task (the embeddings stay the base's: the head is
tied to them, and they are a third of the weights). LoRA alone could not repair the cut: rank 32 on every projection of
8 blocks, 400 steps, reached eval loss 0.33 and 11 of 100 generated sentences exact; training the blocks, the same
400 steps, 0.088 and 54 of 100 (one run each, 2026-12-07).

The result is a plain Hugging Face folder that any backend serves (llama.cpp converts it to GGUF once), with a card,
netgpt-student.json: the base it was cut from (source and fingerprint), the blocks kept, the data, the steps and the
metrics.

torch is imported inside the functions that use them: importing this module must not load it.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

from netgpt.models.base import ModelError, describe
from netgpt.models.lora import encode, eval_loss, optimise, task_metric

CARD = "netgpt-student.json"
# How llama.cpp serves a student (netgpt.models.gguf_export: f16, then llama.cpp's own quantizer). q4_0: the operator
# intent reader read 47 of its 64 development sentences right against q8_0's 46, at a p50 of 50-54 ms against 70-76
# and a p95 of 98-113 against 134-143 (two passes of each, alternated, 2026-12-07, 2 cores, /tmp script).
SERVE_AS = "q4_0"
# The first eight blocks and the last two of SmolLM2-135M's 30: the choice of the module doc's comparison.
DEFAULT_KEEP = (0, 1, 2, 3, 4, 5, 6, 7, 28, 29)


@dataclass
class StudentConfig:
    task: str
    keep: tuple[int, ...] = DEFAULT_KEEP  # block indices of the base (kept in the base's order); negative: from the top
    steps: int = 1000
    batch_size: int = 8
    lr: float = 5e-4
    max_len: int = 192
    n_generate: int = 100  # eval examples answered by greedy generation for the exact-match metric
    seed: int = 0
    max_minutes: Optional[float] = None  # wall-clock cap for the optimiser steps (lora.optimise)


def cut(model, keep: tuple[int, ...]):
    """Keep blocks `keep` of a LLaMA-style model (model.model.layers), in place; returns the model."""
    import torch

    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        raise ModelError(f"cannot cut a {model.config.model_type} model: only LLaMA-style models (model.layers)")
    n = len(layers)
    picked = sorted({i % n for i in keep if -n <= i < n})
    if len(picked) != len(keep) or not picked:
        raise ModelError(f"blocks {list(keep)} are not distinct blocks of the base's {n}")
    model.model.layers = torch.nn.ModuleList(layers[i] for i in picked)
    for j, block in enumerate(model.model.layers):
        block.self_attn.layer_idx = j  # the KV cache is indexed by position in the stack
    model.config.num_hidden_layers = len(picked)
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = [model.config.layer_types[i] for i in picked]
    return model


def train_student(model, tokenizer, cfg: StudentConfig, out_dir: Path, data: tuple[list, list, str],
                  log: Callable[[str], None] = print, progress: bool = True) -> dict:
    """Cut `model` (a base, as netgpt.models.base.load_base gives it) to cfg.keep, train the kept blocks and the final
    norm on data = (train examples, eval examples, provenance), evaluate, save folder + card."""
    import torch

    t_start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    teacher = describe(model)
    n_base = model.config.num_hidden_layers
    cut(model, cfg.keep)
    train, evals, provenance = data
    train_enc = [encode(tokenizer, e, cfg.max_len) for e in train]
    eval_enc = [encode(tokenizer, e, cfg.max_len) for e in evals]
    loss_cut = eval_loss(model, tokenizer, eval_enc)
    log(f"{cfg.task}: student of {model.config.num_hidden_layers} of {n_base} blocks; {len(train)} train / "
        f"{len(evals)} eval examples; eval loss as cut {loss_cut:.3f}")

    for name, p in model.named_parameters():
        p.requires_grad = ".layers." in name or name.endswith("model.norm.weight")
    trainable = [p for p in model.parameters() if p.requires_grad]
    done, steps_per_s = optimise(model, trainable, train_enc, cfg, tokenizer.pad_token_id, random.Random(cfg.seed),
                                 log, progress)
    model.eval()
    loss_after = eval_loss(model, tokenizer, eval_enc)
    exact = task_metric(model, tokenizer, cfg.task, evals[:cfg.n_generate])
    metrics = {"eval_loss_cut": round(loss_cut, 4), "eval_loss": round(loss_after, 4), "exact_match": round(exact, 4),
               "train_steps_per_s": round(steps_per_s, 2)}
    log(f"{cfg.task}: after {done} steps: eval loss {loss_after:.3f}, exact match {exact:.3f} ({steps_per_s:.2f} steps/s)")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CARD).unlink(missing_ok=True)  # written last: a folder without it is not a (complete) student
    for p in model.parameters():
        p.requires_grad = False
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    card = {"task": cfg.task, "cut_from": teacher["source"], "cut_from_fingerprint": teacher["fingerprint"],
            "blocks_kept": sorted(i % n_base for i in cfg.keep), "blocks_of_base": n_base,
            "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1), "data": provenance,
            "steps": done, "config": asdict(cfg), "metrics": metrics,
            "minutes": round((time.perf_counter() - t_start) / 60, 2)}
    (out_dir / CARD).write_text(json.dumps(card, indent=2))
    (out_dir / "README.md").write_text(f"# Task student: {cfg.task}\n\nCut from `{card['cut_from']}` (fingerprint "
                                       f"{card['cut_from_fingerprint']}), blocks {card['blocks_kept']} of {n_base}, "
                                       f"every block trained.\n\nData: {provenance}\n\n```json\n"
                                       f"{json.dumps(card, indent=2)}\n```\n")
    return {"path": out_dir, "metrics": metrics, "card": card, "model": model}


def task_dir(cache_dir: Path, task: str) -> Path:
    """Where `netgpt models train --task T --student` saves a task's student (the operator-intent reader has its own
    place: netgpt.intent.lm.student_dir)."""
    return Path(cache_dir) / "models" / f"{task}-student"


def card_of(path: Path) -> dict:
    """The student's card; {} when the folder has none (not a student, or an interrupted save). Unlike
    netgpt.models.lora.read_card, which raises for a folder that is no adapter: "not built" is an answer here."""
    card = Path(path).expanduser() / CARD  # "~/..." as load_base reads it (models/base.py)
    try:
        return json.loads(card.read_text())
    except (OSError, ValueError):
        return {}


def is_student_of(base_dir: str | Path, task: str) -> bool:
    """Whether the folder `base_dir` ("~" expanded) is a task student of `task` by its card: what `netgpt models
    check/install` ask of the edge base, which as a student of the `complete` task is the LM itself and takes no
    adapter (load_edge_lm reads the card itself, once, for its error message too). False for a plain folder, a hub
    id, or a student of another task."""
    return card_of(Path(base_dir)).get("task") == task
