"""Exponential moving average of the trainable weights; the exported model carries the EMA weights.

The shadow copy is fp32 and keyed by parameter name so it survives save/load and ZeRO partitioning
(under ZeRO-3 the caller gathers the parameters before `update`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class EMA:
    """With `warmup`, the decay ramps as min(decay, (1 + n) / (10 + n)) over the n updates so far (as diffusers'
    EMAModel does): without it a short run exports weights still ~decay^n made of the initialisation."""

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True):
        self.decay = decay
        self.warmup = warmup
        self.num_updates = 0
        self.shadow: dict[str, torch.Tensor] = {
            name: p.detach().float().clone() for name, p in model.named_parameters() if p.requires_grad
        }

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        self.num_updates += 1
        names, live = [], []
        for name, p in model.named_parameters():
            if name in self.shadow:
                names.append(name)
                live.append(p.detach().float() if p.dtype != torch.float32 else p.detach())
        shadow = [self.shadow[n] for n in names]
        torch._foreach_lerp_(shadow, live, 1.0 - decay)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        for name, p in model.named_parameters():
            if name in self.shadow:
                p.copy_(self.shadow[name].to(p.dtype))

    @contextlib.contextmanager
    def swapped_in(self, model: nn.Module) -> Iterator[None]:
        """Run a block (sampling, evaluation) with EMA weights, then put the live weights back."""
        backup = {n: p.detach().clone() for n, p in model.named_parameters() if n in self.shadow}
        self.copy_to(model)
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in model.named_parameters():
                    if name in backup:
                        p.copy_(backup[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(self.shadow) - set(state)
        if missing:
            from unipic.errors import IntegrityError

            raise IntegrityError(
                f"EMA state lacks {len(missing)} parameters (e.g. {sorted(missing)[:3]}): the checkpoint was "
                "written for another model; resume with the model it was trained with"
            )
        for name in self.shadow:
            self.shadow[name] = state[name].float().clone()
