"""LoRA fine-tuning with peft: one adapter per task, saved in peft format next to a model card.

    cfg = LoraTaskConfig(task="intent", steps=300)
    result = train_adapter(model, tokenizer, cfg, out_dir)      # -> {"path": ..., "metrics": {...}}
    check_adapter(model, out_dir)                               # raises ModelError if it was made for another base

The card (netgpt-adapter.json, mirrored in README.md) records the base's source and fingerprint (netgpt.models.base), the data,
the steps and the metrics. Loading refuses an adapter whose card names another base, with the reason.

torch and peft are imported inside the functions that use them: importing this module must not load them.
"""
from __future__ import annotations

import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

from tqdm import tqdm

from netgpt.models import tasks
from netgpt.models.base import BaseSpec, ModelError, describe, fingerprint, load_base, resolve

CARD = "netgpt-adapter.json"
# Adapters trained here and shipped with the code (each folder's README says how it was trained): `netgpt models
# install` makes one the cache's, so a fresh clone's demo does not depend on what a 5-minute training reaches on a
# loaded machine (17 to 34 steps, eval loss 0.20 to 0.88 per target token).
SHIPPED_ADAPTERS = Path(__file__).resolve().parent / "adapters"
# LoRA targets when the config names none. GPT-2: every projection, because attention alone (peft's default, c_attn)
# reached 0.56 intent accuracy on the edge default after 300 steps and all three 1.00, at the same speed.
# Other architectures: peft's default (q_proj/v_proj for LLaMA).
DEFAULT_TARGETS = {"gpt2": ["c_attn", "c_proj", "c_fc"]}
# Per task and architecture: `complete` and `forecast` on LLaMA (SmolLM2) adapt every projection of the blocks they
# adapt (only the top ones, tasks.TRAIN_BUDGETS), so that few blocks carry enough capacity.
_LLAMA_ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TASK_TARGETS = {("complete", "llama"): _LLAMA_ALL, ("forecast", "llama"): _LLAMA_ALL}


@dataclass
class LoraTaskConfig:
    task: str
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: Optional[list[str]] = None  # None: DEFAULT_TARGETS, else peft's default for the architecture
    steps: int = 300
    batch_size: int = 16
    lr: float = 2e-3
    n_train: int = 2000
    n_eval: int = 200
    n_generate: int = 50  # eval examples answered by greedy generation for the task metric
    max_len: int = 192
    seed: int = 0
    # LoRA on the top `top_layers` transformer blocks only (None: every block). Backpropagation then stops at the
    # lowest adapted block, which is most of a step's cost on a CPU.
    top_layers: Optional[int] = None
    # Wall-clock cap for the optimiser steps: after the first steps the run is shortened to what fits (the schedule is
    # stretched over the steps that will run) and the card records the steps done. None: no cap, except for the
    # `complete` task: Settings.complete_train_minutes.
    max_minutes: Optional[float] = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.max_minutes is None and self.task == "complete":
            from netgpt.core.settings import get_settings

            self.max_minutes = get_settings().complete_train_minutes
        budget = tasks.TRAIN_BUDGETS.get(self.task, {})  # a task whose defaults would train for hours on 2 cores
        for name, value in budget.items():
            if name.endswith("_max"):  # eval sizes: at most this many
                setattr(self, name[:-4], min(getattr(self, name[:-4]), value))
            elif getattr(self, name) is None:
                setattr(self, name, value)


# --- data -------------------------------------------------------------------------------------------------------------


EVAL_SEED_OFFSET = 10_007  # the eval set's seed is the training seed plus this


def split(cfg: LoraTaskConfig) -> tuple[list[tasks.Example], list[tasks.Example]]:
    """Train and eval sets from different seeds; eval drops any prompt seen in training."""
    train = tasks.make_examples(cfg.task, cfg.n_train, seed=cfg.seed)
    seen = {e.prompt for e in train}
    evals = [e for e in tasks.make_examples(cfg.task, cfg.n_eval * 5, seed=cfg.seed + EVAL_SEED_OFFSET)
             if e.prompt not in seen]
    return train, evals[:cfg.n_eval]


def encode(tokenizer, example: tasks.Example, max_len: int) -> tuple[list[int], list[int]]:
    """Prompt and target are tokenised separately, as at inference; the loss covers the target and the end token."""
    prompt = tokenizer(example.prompt, add_special_tokens=False)["input_ids"]
    target = tokenizer(example.target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = (prompt + target)[-max_len:]
    labels = ([-100] * len(prompt) + target)[-max_len:]
    return ids, labels


def collate(pairs: list[tuple[list[int], list[int]]], pad_id: int):
    import torch

    width = max(len(ids) for ids, _ in pairs)
    input_ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    labels = torch.full((len(pairs), width), -100, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for row, (ids, lab) in enumerate(pairs):
        input_ids[row, :len(ids)] = torch.tensor(ids)
        labels[row, :len(lab)] = torch.tensor(lab)
        mask[row, :len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


# --- evaluation -------------------------------------------------------------------------------------------------------


def eval_loss(model, tokenizer, encoded: list, batch_size: int = 32) -> float:
    """Mean loss per target token over the eval set."""
    import torch

    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for i in range(0, len(encoded), batch_size):
            batch = collate(encoded[i:i + batch_size], tokenizer.pad_token_id)
            n = int((batch["labels"][:, 1:] != -100).sum())
            total += model(**batch).loss.item() * n
            count += n
    return total / max(count, 1)


def answer(model, tokenizer, prompt: str, max_new_tokens: int) -> str:
    import torch

    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def task_metric(model, tokenizer, task: str, examples: list[tasks.Example]) -> float:
    """Mean of tasks.score over greedy answers: exact match / accuracy, or MAE for forecast."""
    if not examples:
        return float("nan")
    longest = max(len(tokenizer(e.target, add_special_tokens=False)["input_ids"]) for e in examples)
    scores = [tasks.score(task, answer(model, tokenizer, e.prompt, longest + 2), e) for e in examples]
    return sum(scores) / len(scores)


# --- training ---------------------------------------------------------------------------------------------------------


def train_adapter(model, tokenizer, cfg: LoraTaskConfig, out_dir: Path, log: Callable[[str], None] = print,
                  progress: bool = True, data: Optional[tuple[list, list, str]] = None) -> dict:
    """Wrap the base with a fresh LoRA adapter, train it on the task, evaluate, save adapter + card.

    `data` = (train, eval, provenance) for a task whose examples are made outside netgpt.models (e.g. the operator
    intent reader's, by netgpt.intent.training_data); scored by exact match of the first line."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model

    t_start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    base_info = describe(model)  # before peft wraps it: the fingerprint must match what a loader will see
    train, evals = (data[0], data[1]) if data else split(cfg)
    train_enc = [encode(tokenizer, e, cfg.max_len) for e in train]
    eval_enc = [encode(tokenizer, e, cfg.max_len) for e in evals]
    generate_on = evals[:cfg.n_generate]
    metric = tasks.METRIC_NAME.get(cfg.task, "exact_match")

    loss_before = eval_loss(model, tokenizer, eval_enc)
    metric_before = task_metric(model, tokenizer, cfg.task, generate_on)
    log(f"{cfg.task}: {len(train)} train / {len(evals)} eval examples ({'given' if data else 'generated'}); "
        f"before: eval loss {loss_before:.3f}, {metric} {metric_before:.3f}")

    n_layers = getattr(model.config, "num_hidden_layers", None) or getattr(model.config, "n_layer", None)
    layers = (list(range(max(0, n_layers - cfg.top_layers), n_layers))
              if cfg.top_layers and n_layers and cfg.top_layers < n_layers else None)
    lora = LoraConfig(task_type=TaskType.CAUSAL_LM, r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                      target_modules=cfg.target_modules or TASK_TARGETS.get((cfg.task, model.config.model_type))
                      or DEFAULT_TARGETS.get(model.config.model_type),
                      layers_to_transform=layers,
                      fan_in_fan_out=model.config.model_type == "gpt2")  # GPT-2 stores weights as Conv1D (in, out)
    peft_model = get_peft_model(model, lora)
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    done, steps_per_s = optimise(peft_model, trainable, train_enc, cfg, tokenizer.pad_token_id, rng, log, progress)

    peft_model.eval()
    loss_after = eval_loss(peft_model, tokenizer, eval_enc)
    metric_after = task_metric(peft_model, tokenizer, cfg.task, generate_on)
    metrics = {"eval_loss_before": round(loss_before, 4), "eval_loss": round(loss_after, 4),
               f"{metric}_before": round(metric_before, 4), metric: round(metric_after, 4),
               "train_steps_per_s": round(steps_per_s, 2)}
    naive = [tasks.naive_answer(cfg.task, e) for e in generate_on]
    if generate_on and None not in naive:  # forecast: the last-value baseline on the same examples
        metrics[f"{metric}_last_value"] = round(
            sum(tasks.score(cfg.task, a, e) for a, e in zip(naive, generate_on)) / len(naive), 4)
    log(f"{cfg.task}: after {done} steps: eval loss {loss_after:.3f}, {metric} {metric_after:.3f} "
        f"({steps_per_s:.2f} steps/s)")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(out_dir)
    card = {"task": cfg.task, "base": base_info["source"], "base_fingerprint": base_info["fingerprint"],
            "base_architecture": base_info["architecture"], "base_params_m": base_info["params_m"],
            "data": data[2] if data else f"generated by models/tasks.py ({cfg.task}; see models/DATA.md): "
                    f"{len(train)} train, {len(evals)} eval examples, seeds {cfg.seed}/{cfg.seed + EVAL_SEED_OFFSET}",
            "steps": done, "config": asdict(cfg), "metrics": metrics,
            "minutes": round((time.perf_counter() - t_start) / 60, 2)}
    (out_dir / CARD).write_text(json.dumps(card, indent=2))
    (out_dir / "README.md").write_text(f"# LoRA adapter: {cfg.task}\n\nBase: `{card['base']}` "
                                       f"({card['base_architecture']}, fingerprint {card['base_fingerprint']}).\n\n"
                                       f"Data: {card['data']}\n\n```json\n{json.dumps(card, indent=2)}\n```\n")
    return {"path": out_dir, "metrics": metrics, "card": card, "model": peft_model}


def optimise(model, trainable: list, train_enc: list, cfg, pad_id: int, rng: random.Random,
             log: Callable[[str], None] = print, progress: bool = True) -> tuple[int, float]:
    """AdamW over `trainable` on random batches of `train_enc`, warm-up then cosine decay, gradients clipped at 1;
    `cfg` gives steps, batch_size, lr, max_minutes (the wall-clock cap) and task (for the log). Returns the steps
    done and their rate."""
    import torch

    optimizer = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=0.0)
    total = [cfg.steps]  # shortened once the step rate is known when there is a time cap
    warmup = max(1, cfg.steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, total[0]) / total[0])))

    model.train()
    t_train = time.perf_counter()
    # a bar on a terminal only: in a log each refresh is a line
    bar = tqdm(range(cfg.steps), desc=f"train {cfg.task}", disable=not progress or not sys.stderr.isatty())
    done = 0
    for step in bar:
        if step >= total[0]:
            break
        if cfg.max_minutes and step == 3:  # three steps timed: keep what fits the cap
            fits = int(cfg.max_minutes * 60 / ((time.perf_counter() - t_train) / 3))
            if fits < total[0]:
                total[0] = max(4, fits)
                warmup = max(1, total[0] // 10)
                log(f"{cfg.task}: {cfg.max_minutes:g} min cap: {total[0]} of {cfg.steps} steps")
        batch = collate(rng.sample(train_enc, min(cfg.batch_size, len(train_enc))), pad_id)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        done += 1
        bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return done, done / max(time.perf_counter() - t_train, 1e-9)


# --- loading ----------------------------------------------------------------------------------------------------------


def read_card(path: Path) -> dict:
    path = Path(path)
    if not (path / "adapter_config.json").is_file():
        raise ModelError(f"{path} is not a peft adapter folder (no adapter_config.json)")
    card_file = path / CARD
    return json.loads(card_file.read_text()) if card_file.is_file() else {}


def check_adapter(model, path: Path) -> dict:
    """Refuse, with the reason, an adapter trained for another base. Returns its card."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return check_adapter_for(path, BaseIdentity.of(base))


@dataclass(frozen=True)
class BaseIdentity:
    """What an adapter is checked against: enough of a base to refuse an adapter of another one, without its weights
    (a serving backend other than torch keeps only this once it has its own copy of the model)."""

    fingerprint: str
    source: str  # how the base was named (netgpt_source, else its folder or hub id)
    name_or_path: str  # the config's _name_or_path, which peft records in adapter_config.json
    architecture: str

    @classmethod
    def of(cls, base) -> "BaseIdentity":
        return cls(fingerprint(base), str(getattr(base, "netgpt_source", base.config._name_or_path)),
                   str(base.config._name_or_path or ""), (base.config.architectures or ["?"])[0])


IDENTITY_RECORD = "netgpt-identity.json"  # next to a base's weights: its BaseIdentity and what the files were then


def _files_stamp(folder: Path) -> list[list]:
    """Name, size and mtime of every file of a model folder (its record aside): other weights, another stamp."""
    files = [f for f in folder.iterdir() if f.name != IDENTITY_RECORD and f.is_file()]
    return sorted([f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files)


def base_identity(spec: BaseSpec) -> BaseIdentity:
    """A base's identity without loading its weights when a local folder's record still matches its files: `make
    demo` asks `netgpt models check` every time, and loading the 135 M base for 16 hex digits took ~8 s. Otherwise
    the base is loaded (ModelError when it cannot be) and, for a writable local folder, the identity recorded."""
    where = Path(resolve(spec, build=False))
    record = where / IDENTITY_RECORD
    if where.is_dir() and record.is_file():
        try:
            saved = json.loads(record.read_text())
            if saved["files"] == _files_stamp(where):
                # What the files are is recorded; what they are called (a copied or renamed folder) is asked now.
                return BaseIdentity(saved["fingerprint"], spec.source, str(where), saved["architecture"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable or of another version: load the base and write it again
    model, _ = load_base(spec, build=False)
    identity = BaseIdentity.of(model)
    if where.is_dir():
        try:
            record.write_text(json.dumps({"files": _files_stamp(where), "fingerprint": identity.fingerprint,
                                          "architecture": identity.architecture}))
        except OSError:
            pass  # a read-only folder: the base is loaded on every check
    return identity


def check_adapter_for(path: Path, base: BaseIdentity) -> dict:
    """With a netgpt card, the base fingerprint must match. Without one (an adapter from elsewhere), peft's own record
    of the base (`base_model_name_or_path`) must match the base's name."""
    path = Path(path)
    card = read_card(path)
    if card:
        if card.get("base_fingerprint") != base.fingerprint:
            raise ModelError(
                f"adapter {path.name} was trained for base {card.get('base')!r} ({card.get('base_architecture')}, "
                f"fingerprint {card.get('base_fingerprint')}), not for this base {base.source!r} "
                f"({base.architecture}, fingerprint {base.fingerprint})")
        return card
    peft_cfg = json.loads((path / "adapter_config.json").read_text())
    theirs, ours = peft_cfg.get("base_model_name_or_path"), base.name_or_path
    if theirs and ours and Path(theirs).name != Path(ours).name:
        raise ModelError(f"adapter {path.name} has no netgpt card and names base {theirs!r}, not {ours!r}")
    return card
