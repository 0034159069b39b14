"""Optimizer and learning-rate schedule, built from the trainer config.

AdamW with `fused=True` is about 3x faster than the default foreach kernel on CPU (notes/feas_ml.md §2).
The schedule's position (last_epoch) is checkpointed, its shape comes from the config.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from unipic.config.train import TrainerConfig


def param_groups(named_params: Iterable[tuple[str, nn.Parameter]], weight_decay: float) -> list[dict]:
    """Decay matrices only: biases, norm scales and embeddings-as-vectors keep their scale."""
    decay, no_decay = [], []
    for _, p in named_params:
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(model: nn.Module, cfg: TrainerConfig) -> torch.optim.AdamW:
    groups = param_groups(model.named_parameters(), cfg.weight_decay)
    if not any(g["params"] for g in groups):
        from unipic.errors import ConfigError

        raise ConfigError("the model has no trainable parameters: nothing to optimize (check requires_grad)")
    fused = cfg.fused_adamw and all(p.dtype in (torch.float32, torch.bfloat16) for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, fused=fused or None)


class WarmupDecay:
    """lr multiplier: linear warm-up from 1/warmup to 1, then cosine / linear / constant to min_lr_ratio.

    `wsd` (warm-up, stable, decay) holds the peak and decays linearly over the last `decay_fraction` of the run:
    a run that changes its data mix part-way (pretrain.edit_phases) keeps the full lr for the late phase and still
    ends annealed, which a cosine over the whole run cannot do."""

    def __init__(
        self, total_steps: int, warmup_steps: int, schedule: str, min_lr_ratio: float, decay_fraction: float = 0.2
    ):
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.schedule = schedule
        self.min_lr_ratio = min_lr_ratio
        self.decay_start = max(warmup_steps, total_steps - round(decay_fraction * total_steps))

    def __call__(self, step: int) -> float:
        if self.warmup_steps and step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return 1.0
        if self.schedule == "wsd":
            if step < self.decay_start:
                return 1.0
            progress = min(1.0, (step - self.decay_start) / max(1, self.total_steps - self.decay_start))
            return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * (1.0 - progress)
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        if self.schedule == "linear":
            shape = 1.0 - progress
        else:
            shape = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * shape


def build_lr_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainerConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """The multiplier is wrapped in a plain function on purpose: LambdaLR does not checkpoint functions,
    so after a resume the schedule follows the current config (e.g. more steps) from the restored step."""
    shape = WarmupDecay(cfg.steps, cfg.warmup_steps, cfg.schedule, cfg.min_lr_ratio, cfg.decay_fraction)

    def multiplier(step: int) -> float:
        return shape(step)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
