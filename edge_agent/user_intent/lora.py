"""A LoRA-tuned intent classifier: the MiniLM encoder (all-MiniLM-L6-v2, the same weights the current classifier
embeds with) with peft LoRA on its attention and feed-forward projections, mean pooling (as the sentence encoder was
trained) and a linear head to the seven service classes, fine-tuned end to end on the GENERATED training set
(netgpt.edge_agent.user_intent.training_data, seeded). The current classifier (classifier.py: frozen embeddings + char
n-grams + logistic regression) stays the edge agent's default; this one is compared with it by bench/user_intent.py.

Training (`fit`): cross-entropy, AdamW, `epochs` passes in batches of `batch_size`, seeded. Calibration: with `groups`
(template ids) a share `calibration_share` of the templates is held back, the model is trained on the rest and a
temperature is fitted on the held-back templates (phrasings the model never saw, as classifier.py calibrates); then,
with `refit`, the model is trained again the same way on all the data and keeps that temperature (as
CalibratedClassifierCV(ensemble=False) does). Without groups the temperature is 1.

The same interface as classifier.UserIntentClassifier where it matters: fit, predict_proba (columns in CLASSES
order), predict, infer_intent(s), save / load. torch, transformers and peft are imported where they are used.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from netgpt.edge_agent.user_intent.classifier import CLASSES, IntentPredictor, encoder_dir, validate_prompt
from netgpt.edge_agent.user_intent.training_data import generate_training_set

log = logging.getLogger(__name__)

MODEL_NAME = "minilm-l6-lora/linear-temperature/v1"


@dataclass(frozen=True)
class LoRAIntentConfig:
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] = ("query", "key", "value", "dense")  # attention and feed-forward projections
    epochs: int = 3
    batch_size: int = 32
    lr: float = 5e-4
    head_lr: float = 2e-3
    weight_decay: float = 0.01
    max_length: int = 64
    calibration_share: float = 0.2
    refit: bool = True
    seed: int = 0
    threads: int | None = 1  # torch threads while training (None: leave as is). 1: on this shared 2-core machine two
    # threads ran 0.15 steps/s while another process was busy, one thread 1.4-1.7
    max_train_seconds: float = 600.0  # a cap on one training pass (it stops early, and says so in `log`)


class LoRAIntentClassifier(IntentPredictor):
    """Prompt -> (ServiceClass, confidence); fit / predict_proba / predict / infer_intent(s) / save / load."""

    model_name = MODEL_NAME

    def __init__(self, config: LoRAIntentConfig | None = None):
        self.cfg = config or LoRAIntentConfig()
        self.net = None
        self.tokenizer = None
        self.temperature = 1.0
        self.report: dict = {}

    # --- model ------------------------------------------------------------------------------------------------------

    def _build(self):
        import torch
        from peft import LoraConfig, get_peft_model
        from torch import nn
        from transformers import AutoModel, AutoTokenizer

        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        self.tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir()))
        encoder = AutoModel.from_pretrained(str(encoder_dir()), dtype=torch.float32, add_pooling_layer=False)
        lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=list(cfg.lora_targets), bias="none")
        encoder = get_peft_model(encoder, lora)

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = encoder
                self.head = nn.Linear(encoder.config.hidden_size, len(CLASSES))

            def forward(self, input_ids, attention_mask):
                h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                m = attention_mask.unsqueeze(-1).to(h.dtype)
                pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)  # mean pooling, as all-MiniLM-L6-v2 was trained
                return self.head(pooled)

        return Net()

    def _tokens(self, texts: Sequence[str]):
        return self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.cfg.max_length,
                              return_tensors="pt")

    def _train(self, texts: list[str], y: np.ndarray) -> dict:
        import torch

        cfg = self.cfg
        self.net = self._build()
        heads = list(self.net.head.parameters())
        lora = [p for n, p in self.net.encoder.named_parameters() if p.requires_grad]
        opt = torch.optim.AdamW([{"params": lora, "lr": cfg.lr}, {"params": heads, "lr": cfg.head_lr}],
                                weight_decay=cfg.weight_decay)
        rng = np.random.default_rng(cfg.seed)
        steps_total = cfg.epochs * math.ceil(len(texts) / cfg.batch_size)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20) * max(0.0, 1 - s / steps_total))
        labels = torch.as_tensor(y)
        self.net.train()
        started, step, stopped = time.perf_counter(), 0, False
        for _ in range(cfg.epochs):
            order = rng.permutation(len(texts))
            for i in range(0, len(order), cfg.batch_size):
                idx = order[i:i + cfg.batch_size]
                tok = self._tokens([texts[j] for j in idx])
                loss = torch.nn.functional.cross_entropy(self.net(tok["input_ids"], tok["attention_mask"]), labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                if time.perf_counter() - started > cfg.max_train_seconds:
                    stopped = True
                    break
            if stopped:
                log.warning("LoRA intent classifier: stopped at step %d of %d (time cap)", step, steps_total)
                break
        self.net.eval()
        seconds = time.perf_counter() - started
        return {"steps": step, "of_steps": steps_total, "seconds": seconds, "steps_per_s": step / max(seconds, 1e-9)}

    def _logits(self, texts: Sequence[str], batch: int = 64) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch):
                tok = self._tokens(texts[i:i + batch])
                out.append(self.net(tok["input_ids"], tok["attention_mask"]).numpy())
        return np.concatenate(out) if out else np.zeros((0, len(CLASSES)))

    # --- training ---------------------------------------------------------------------------------------------------

    def fit(self, texts: Sequence[str], labels: Sequence[str], groups: Sequence[str] | None = None):
        unknown = set(labels) - set(CLASSES)
        if unknown:
            raise ValueError(f"unknown labels {sorted(unknown)}; expected ServiceClass values")
        import torch

        before = torch.get_num_threads()
        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        try:
            texts = [str(t) for t in texts]
            y = np.array([CLASSES.index(l) for l in labels])
            self.report = {"n": len(texts)}
            self.temperature = 1.0
            if groups is not None and self.cfg.calibration_share > 0:
                from sklearn.model_selection import GroupShuffleSplit

                split = GroupShuffleSplit(n_splits=1, test_size=self.cfg.calibration_share, random_state=self.cfg.seed)
                train, held = next(split.split(texts, y, list(groups)))
                self.report["calibration_train"] = self._train([texts[i] for i in train], y[train])
                logits = self._logits([texts[i] for i in held])
                self.temperature = fit_temperature(logits, y[held])
                probs = softmax(logits / self.temperature)
                self.report["calibration"] = {"n": len(held), "temperature": self.temperature,
                                              "accuracy": float((probs.argmax(1) == y[held]).mean())}
                if not self.cfg.refit:
                    return self
            self.report["train"] = self._train(texts, y)
        finally:
            torch.set_num_threads(before)
        return self

    @classmethod
    def train_default(cls, config: LoRAIntentConfig | None = None) -> "LoRAIntentClassifier":
        """Train on the GENERATED training set (never on the held-out file)."""
        samples = generate_training_set()
        return cls(config).fit([s.text for s in samples], [s.label for s in samples], [s.template for s in samples])

    # --- persistence ------------------------------------------------------------------------------------------------

    def save(self, folder: Path) -> Path:
        """The trainable weights only (LoRA + head, ~1 MB), the temperature and the config."""
        import torch

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        trainable = {n for n, p in self.net.named_parameters() if p.requires_grad}
        torch.save({k: v for k, v in self.net.state_dict().items() if k in trainable}, folder / "weights.pt")
        cfg = asdict(self.cfg)
        cfg["lora_targets"] = list(cfg["lora_targets"])
        (folder / "meta.json").write_text(json.dumps({"model": MODEL_NAME, "temperature": self.temperature,
                                                      "config": cfg}))
        return folder

    @classmethod
    def load(cls, folder: Path) -> "LoRAIntentClassifier":
        import torch

        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("model") != MODEL_NAME:
            raise ValueError(f"saved classifier is {meta.get('model')!r}, this code expects {MODEL_NAME!r}")
        cfg = meta["config"]
        cfg["lora_targets"] = tuple(cfg["lora_targets"])
        self = cls(LoRAIntentConfig(**cfg))
        self.net = self._build()
        missing = self.net.load_state_dict(torch.load(folder / "weights.pt"), strict=False)
        if missing.unexpected_keys:
            raise ValueError(f"unexpected weights in {folder}: {missing.unexpected_keys[:3]}")
        self.net.eval()
        self.temperature = float(meta["temperature"])
        return self

    # --- inference --------------------------------------------------------------------------------------------------

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, len(CLASSES)) probabilities (temperature-scaled); each text is validated first."""
        if self.net is None:
            raise RuntimeError("the classifier is not trained: call fit() or load()")
        cleaned = [validate_prompt(t) for t in texts]
        if not cleaned:
            return np.zeros((0, len(CLASSES)))
        return softmax(self._logits(cleaned) / self.temperature)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature T > 0 that minimises the negative log-likelihood of softmax(logits / T) (a 1-D search)."""
    from scipy.optimize import minimize_scalar

    def nll(log_t):
        p = softmax(logits / math.exp(log_t))
        return -float(np.mean(np.log(p[np.arange(len(y)), y] + 1e-12)))

    return float(math.exp(minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded").x))
