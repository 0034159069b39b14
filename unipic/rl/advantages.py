"""GRPO advantages: rewards normalised within each group of samples that share a condition.

The group key is the prompt for text-to-image and (instruction, source image) for editing, as in Flow-GRPO's
`PerPromptStatTracker` and its Kontext script. A group whose rewards are all equal carries no learning signal
(its advantages are exactly zero) and is dropped rather than trained on.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch


@dataclass
class Advantages:
    values: torch.Tensor
    """(N,) clipped advantages, zero where dropped."""
    keep: torch.Tensor
    """(N,) bool: samples that belong to a group with reward variance."""
    n_groups: int
    n_zero_std_groups: int

    @property
    def zero_std_ratio(self) -> float:
        return self.n_zero_std_groups / max(1, self.n_groups)


def group_ids(keys: Sequence[Hashable]) -> torch.Tensor:
    """Map each sample's group key to a dense integer id (first appearance order)."""
    ids: dict[Hashable, int] = {}
    return torch.tensor([ids.setdefault(k, len(ids)) for k in keys], dtype=torch.long)


def compute_advantages(
    rewards: torch.Tensor,
    keys: Sequence[Hashable],
    *,
    std_mode: Literal["group", "batch"] = "batch",
    clip: float = 5.0,
    eps: float = 1e-4,
    equal_tol: float = 1e-6,
) -> Advantages:
    """(r - group mean) / (std + eps), std per group or over the whole batch, clipped to +-clip."""
    rewards = rewards.detach().double().flatten()
    if rewards.numel() != len(keys):
        raise ValueError(f"{rewards.numel()} rewards but {len(keys)} group keys")
    if not torch.isfinite(rewards).all():
        raise ValueError("non-finite rewards reached the advantage computation; filter them first")
    gid = group_ids(keys)
    n_groups = int(gid.max()) + 1 if gid.numel() else 0
    values = torch.zeros_like(rewards)
    keep = torch.zeros(rewards.numel(), dtype=torch.bool)
    batch_std = rewards.std(unbiased=False) if rewards.numel() > 1 else rewards.new_tensor(0.0)
    zero_std = 0
    for g in range(n_groups):
        m = gid == g
        r = rewards[m]
        if m.sum() < 2 or float(r.max() - r.min()) <= equal_tol:
            zero_std += 1
            continue
        std = r.std(unbiased=False) if std_mode == "group" else batch_std
        values[m] = (r - r.mean()) / (std + eps)
        keep[m] = True
    values = values.clamp(-clip, clip).float()
    return Advantages(values=values, keep=keep, n_groups=n_groups, n_zero_std_groups=zero_std)
