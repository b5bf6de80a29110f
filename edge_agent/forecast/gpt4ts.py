"""`gpt4ts`: a GPT4TS-style forecaster ("One Fits All", Zhou et al., NeurIPS 2023) on the first layers of SmolLM2-135M,
with LoRA; and `patch_linear`, its no-LM ablation (Tan et al., NeurIPS 2024, "Are language models actually useful for
time series forecasting?": the same model with the LM removed).

The model, for an input window of `context` values ending at the forecast origin:

1. instance normalisation (RevIN without the affine part): the window's mean and standard deviation are removed, and put
   back on the output, so one model serves any level and a level the training part never saw;
2. patching: the normalised window, padded at the end with `stride` copies of its last value (as the paper does), is cut
   into patches of `patch_len` values every `stride` values (16 / 8 by default, the paper's);
3. a linear patch embedding into the LM's hidden size (576 for SmolLM2-135M);
4. the first `n_layers` decoder layers of the pretrained LM (SmolLM2-135M-Instruct, the project's `cloud-default` base,
   30 layers in all), frozen, with the LM's own positional handling (rotary position embeddings, the LM's rotary module
   with positions 0..n_patches-1) and its causal mask; LoRA (peft) on the attention projections q/k/v/o; the layer norms
   (RMSNorm, input and post-attention) trainable, as the paper trains GPT-2's layer norms;
5. a head: LayerNorm, flatten all patch outputs, one linear layer to `max_horizon` values, de-normalised.

`patch_linear` is steps 1-3 and 5 with step 4 removed: no LM weight is loaded or used (tests assert it). The head and the
training are the same, so the table shows what the pretrained layers add.

Training (`fit`): every origin of the training series with a full window and `max_horizon` targets after it is a sample;
the latest `val_share` of them (after a gap of max_horizon, so no target is shared) are the validation set. AdamW on
MSE of the normalised targets (the paper's loss; learning rate warmed up over 50 steps, then cosine-decayed to 10%
over the budget), batches drawn at random, until `max_steps` or `train_seconds`,
whichever comes first; every `eval_every` steps the validation MSE is measured and the best trainable weights kept
(early stopping as in the paper). `steps_done`, `steps_per_s` and `best_val` say what happened. Threads: on
this shared 2-core machine two torch threads stall whenever another process takes a core: with another training
running, one forecast (19 patches through 4 layers) took 25 ms on 1 thread and 360 ms on 2, and a training step
0.17 steps/s on 2 threads against 0.56 on 1; alone, 2 threads trained at 3.4 steps/s. So forecasts use
`predict_threads` (1), and with `threads="auto"` fit times steps 2-7 alternately on 2 and 1 threads and trains on
the faster (`threads_used`); an integer fixes it.

Patching: 16 values per patch, as in the paper, but a stride of 16 (the paper's is 8): a day of 5-minute values is 19
patches instead of 36, which halves the cost of a training step on this CPU-only machine.

Registered in backtesting.METHODS, opt-in: not among DEFAULT_METHODS (see the README's "LoRA models as predictors" for
the backtest that decided it). `unavailable()` says why `gpt4ts` cannot run (no built cloud-default base); the ablation
always can. Importing this module imports no torch: the training and the LM load happen in fit.
"""
from __future__ import annotations

import copy
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from netgpt.edge_agent.forecast.methods import Method

log = logging.getLogger(__name__)

BASE = "cloud-default"  # SmolLM2-135M-Instruct, fp32 Hugging Face folder under <cache>/models/cloud-default


@dataclass(frozen=True)
class GPT4TSConfig:
    context: int | None = None  # input window in steps; None: `context_periods` periods
    context_periods: float = 1.0
    patch_len: int = 16
    stride: int = 16  # the paper uses 8; 16 halves the tokens (19 instead of 36 for a day), see the module doc
    use_lm: bool = True  # False: the no-LM ablation (patch_linear)
    n_layers: int = 4  # first layers of the LM kept
    ablation_hidden: int = 576  # the no-LM model's embedding size: SmolLM2-135M's hidden size, so all else is the same
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    head_dropout: float = 0.1
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    max_steps: int = 3000
    train_seconds: float = 300.0  # wall-clock budget of one fit
    val_share: float = 0.1
    eval_every: int = 100
    val_windows: int = 512  # validation samples (evenly spaced over the validation origins)
    seed: int = 0
    threads: int | str | None = "auto"  # torch threads during fit: "auto" times steps on 2 and 1 and keeps the faster
    predict_threads: int | None = 1  # during predict: one forward of a few windows is too small to split (module doc)
    base: str = BASE
    cache_dir: Path | None = None  # None: Settings.cache_dir


def n_patches(context: int, patch_len: int, stride: int) -> int:
    """Patches of a window of `context` values padded with `stride` copies of its last value."""
    return (context + stride - patch_len) // stride + 1


# --- the pretrained layers, loaded once per process ---------------------------------------------------------------------

_LM_LOCK = threading.Lock()
_LM_CACHE: dict[tuple[str, str], object] = {}


def _base_dir(cfg: GPT4TSConfig) -> Path:
    from netgpt.core.settings import get_settings
    return Path(cfg.cache_dir or get_settings().cache_dir)


def load_lm(cfg: GPT4TSConfig):
    """The pretrained causal LM (eval, fp32), loaded once per (base, cache folder); callers copy the layers they use."""
    from netgpt.models.base import BaseSpec, load_base

    key = (cfg.base, str(_base_dir(cfg)))
    with _LM_LOCK:
        if key not in _LM_CACHE:
            model, _ = load_base(BaseSpec(cfg.base, _base_dir(cfg)), build=False, log=lambda m: None)
            _LM_CACHE[key] = model
        return _LM_CACHE[key]


def forget_lm() -> None:
    with _LM_LOCK:
        _LM_CACHE.clear()


# --- the network --------------------------------------------------------------------------------------------------------


def build_network(cfg: GPT4TSConfig, context: int, horizon: int):
    """The torch module (untrained head and embedding; pretrained layers with fresh LoRA when cfg.use_lm)."""
    import torch
    from torch import nn

    class PatchForecaster(nn.Module):
        def __init__(self):
            super().__init__()
            self.context, self.horizon = context, horizon
            self.patch_len, self.stride = cfg.patch_len, cfg.stride
            self.n_patches = n_patches(context, cfg.patch_len, cfg.stride)
            if cfg.use_lm:
                lm = load_lm(cfg)
                hidden = lm.config.hidden_size
                self.layers = nn.ModuleList(copy.deepcopy(lm.model.layers[i]) for i in range(cfg.n_layers))
                self.rotary = copy.deepcopy(lm.model.rotary_emb)
                self.lm_name = f"{cfg.base}: first {cfg.n_layers} of {lm.config.num_hidden_layers} layers"
            else:
                hidden = cfg.ablation_hidden  # SmolLM2-135M's: the same embedding and head as gpt4ts
                self.layers = nn.ModuleList()
                self.rotary = None
                self.lm_name = "none"
            self.embed = nn.Linear(cfg.patch_len, hidden)
            self.head_norm = nn.LayerNorm(hidden)
            self.head_dropout = nn.Dropout(cfg.head_dropout)
            self.head = nn.Linear(self.n_patches * hidden, horizon)
            mask = torch.full((self.n_patches, self.n_patches), float("-inf")).triu(1)  # causal, as the LM was trained
            self.register_buffer("mask", mask[None, None], persistent=False)
            self.register_buffer("positions", torch.arange(self.n_patches)[None], persistent=False)

        @staticmethod
        def normalise(x):
            """(x - mean) / std per window, with mean and std; std is kept > 0 on a flat window."""
            mean = x.mean(dim=1, keepdim=True)
            std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + 1e-5 * (mean.abs() + 1.0) ** 2)
            return (x - mean) / std, mean, std

        def core(self, z):  # normalised window (batch, context) -> normalised forecast (batch, horizon)
            z = torch.cat([z, z[:, -1:].expand(-1, self.stride)], dim=1)
            patches = z.unfold(1, self.patch_len, self.stride)  # (batch, n_patches, patch_len)
            h = self.embed(patches)
            if len(self.layers):
                pos = self.positions.expand(h.shape[0], -1)
                rope = self.rotary(h, pos)
                mask = self.mask.to(h.dtype)
                for layer in self.layers:
                    out = layer(h, attention_mask=mask, position_ids=pos, position_embeddings=rope)
                    h = out[0] if isinstance(out, tuple) else out
            h = self.head_dropout(self.head_norm(h))
            return self.head(h.flatten(1))

        def forward(self, x):  # raw window (batch, context) -> raw forecast (batch, horizon)
            z, mean, std = self.normalise(x)
            return self.core(z) * std + mean

        def loss(self, x, y):  # MSE in the instance-normalised space (the paper's loss)
            z, mean, std = self.normalise(x)
            return ((self.core(z) - (y - mean) / std) ** 2).mean()

    torch.manual_seed(cfg.seed)
    net = PatchForecaster()
    for p in net.layers.parameters():
        p.requires_grad = False
    if cfg.use_lm:
        from peft import LoraConfig, inject_adapter_in_model

        lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=list(cfg.lora_targets), bias="none")
        net.layers = inject_adapter_in_model(lora, net.layers)
        for name, p in net.layers.named_parameters():
            p.requires_grad = "lora_" in name or "layernorm" in name
    return net


def trainable_parameters(net) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


# --- the method ---------------------------------------------------------------------------------------------------------


class _Threads:
    """Run with cfg.threads torch threads, then restore the previous number."""

    def __init__(self, n: int | None):
        self.n = n

    def __enter__(self):
        import torch
        self.before = torch.get_num_threads()
        if self.n:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        import torch
        torch.set_num_threads(self.before)


class GPT4TS(Method):
    name = "gpt4ts"
    config = GPT4TSConfig()

    def __init__(self, config: GPT4TSConfig | None = None, **overrides):
        cfg = config or type(self).config
        self.cfg = replace(cfg, **overrides) if overrides else cfg

    @classmethod
    def unavailable(cls) -> str | None:
        from netgpt.models.base import MARKER
        cfg = cls.config
        if not cfg.use_lm:
            return None
        marker = _base_dir(cfg) / "models" / cfg.base / MARKER
        if not marker.is_file():
            return f"no built {cfg.base} base at {marker.parent} (run `netgpt models prepare`)"
        return None

    @classmethod
    def _context(cls, period: int, cfg: GPT4TSConfig) -> int:
        c = cfg.context or int(round(cfg.context_periods * period))
        return max(c, cfg.patch_len)

    @classmethod
    def min_fit_length(cls, period, max_horizon):
        return cls._context(period, cls.config) + max_horizon + period  # a period of training windows at least

    def fit(self, y, period, max_horizon, plan_length=None):
        import torch

        cfg = self.cfg
        y = np.asarray(y, dtype=np.float32)
        self.period, self.max_horizon = period, max_horizon
        self.context = self._context(period, cfg)
        self.min_history = self.context
        origins = np.arange(self.context - 1, len(y) - max_horizon)
        if len(origins) < 2:
            raise ValueError(f"gpt4ts needs at least {self.context + max_horizon + 1} observations, got {len(y)}")
        n_val = int(len(origins) * cfg.val_share)
        train_o = origins[: max(1, len(origins) - n_val - max_horizon)]
        val_o = origins[len(origins) - n_val:] if n_val > 0 else origins[-1:]
        if len(val_o) > cfg.val_windows:
            val_o = val_o[np.linspace(0, len(val_o) - 1, cfg.val_windows).astype(int)]
        series = torch.from_numpy(y)
        win = torch.arange(-self.context + 1, 1)
        ahead = torch.arange(1, max_horizon + 1)

        def batch(o):
            o = torch.as_tensor(o)
            return series[o[:, None] + win[None]], series[o[:, None] + ahead[None]]

        with _Threads(cfg.threads if isinstance(cfg.threads, int) else None):
            self.net = build_network(cfg, self.context, max_horizon)
            params = [p for p in self.net.parameters() if p.requires_grad]
            opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

            def lr_at(step: int, elapsed: float) -> float:
                """Warm-up over 50 steps, then cosine to 10% over the budget (steps or seconds, whichever runs out)."""
                progress = min(1.0, max(step / max(1, cfg.max_steps), elapsed / max(cfg.train_seconds, 1e-9)))
                return cfg.lr * min(1.0, (step + 1) / 50) * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))

            rng = np.random.default_rng(cfg.seed)
            xv, yv = batch(val_o)
            best, best_state, self.history = math.inf, None, []
            started, step = time.perf_counter(), 0

            def evaluate():
                self.net.eval()
                with torch.no_grad():
                    total = sum(float(self.net.loss(xv[i:i + 256], yv[i:i + 256])) * len(xv[i:i + 256])
                                for i in range(0, len(xv), 256))
                loss = total / len(xv)
                self.net.train()
                return loss

            self.net.train()
            trial = [2, 1, 2, 1, 2, 1] if cfg.threads == "auto" and (os.cpu_count() or 1) >= 2 else []
            timings: dict[int, list[float]] = {2: [], 1: []}
            self.threads_used = torch.get_num_threads()
            while step < cfg.max_steps and time.perf_counter() - started < cfg.train_seconds:
                t_step = time.perf_counter()
                if 1 <= step <= len(trial):
                    torch.set_num_threads(trial[step - 1])
                elif trial and step == len(trial) + 1:
                    self.threads_used = min(timings, key=lambda n: np.median(timings[n]))
                    torch.set_num_threads(self.threads_used)
                xb, yb = batch(rng.choice(train_o, size=min(cfg.batch_size, len(train_o)), replace=False))
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, time.perf_counter() - started)
                loss = self.net.loss(xb, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                if 1 <= step <= len(trial):
                    timings[trial[step - 1]].append(time.perf_counter() - t_step)
                step += 1
                if step % cfg.eval_every == 0 or step == cfg.max_steps:
                    val = evaluate()
                    self.history.append((step, float(loss.detach()), val))
                    if val < best:
                        best = val
                        best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()
                                      if k in {n for n, p in self.net.named_parameters() if p.requires_grad}}
            self.train_s = time.perf_counter() - started
            if best_state is None or step % cfg.eval_every:  # the last steps since an evaluation count too
                val = evaluate()
                self.history.append((step, float("nan"), val))
                if val < best:
                    best, best_state = val, None
            if best_state is not None:
                self.net.load_state_dict(best_state, strict=False)
            self.net.eval()
        self.steps_done, self.best_val = step, best
        self.steps_per_s = step / max(self.train_s, 1e-9)
        log.info("%s: %d steps in %.0f s (%.2f steps/s, %d threads), best validation MSE %.4f, %d trainable parameters",
                 self.name, step, self.train_s, self.steps_per_s, self.threads_used, best,
                 trainable_parameters(self.net))
        return self

    def predict_many(self, y, origins, horizon):
        import torch

        if horizon > self.max_horizon:
            raise ValueError(f"{self.name} was fitted for {self.max_horizon} steps, asked for {horizon}")
        y = np.asarray(y, dtype=np.float32)
        origins = np.asarray(origins)
        idx = origins[:, None] + np.arange(-self.context + 1, 1)[None]
        out = []
        with _Threads(self.cfg.predict_threads), torch.inference_mode():
            for i in range(0, len(idx), 256):
                out.append(self.net(torch.from_numpy(y[idx[i:i + 256]])).numpy())
        return np.concatenate(out)[:, :horizon].astype(float)


class PatchLinear(GPT4TS):
    """The no-LM ablation: gpt4ts's normalisation, patches, embedding, head and training, without the LM layers."""

    name = "patch_linear"
    config = GPT4TSConfig(use_lm=False)

    def __init__(self, config: GPT4TSConfig | None = None, **overrides):
        super().__init__(config, **overrides)
        self.cfg = replace(self.cfg, use_lm=False)
