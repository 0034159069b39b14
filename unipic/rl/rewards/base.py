"""One batched reward interface for every reward, local or remote.

A reward maps a batch (generated images + prompt or instruction + source image + the sample's structured
ground truth) to one score per image and per-component diagnostics. A score of NaN means "no valid score"
(an unparseable judge answer, a failed request under `on_error=skip`): the trainer excludes such samples and
counts them; nothing is ever silently scored 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from PIL import Image

from unipic.errors import UniPicError


class RewardError(UniPicError):
    """A reward could not be computed (server down after retries, malformed batch)."""


@dataclass
class RewardBatch:
    images: list[Image.Image]
    """Generated images, RGB."""
    prompts: list[str]
    """Caption for text-to-image, instruction for editing."""
    sources: list[Image.Image | None] = field(default_factory=list)
    """Editing source images (None for text-to-image)."""
    metas: list[dict[str, Any]] = field(default_factory=list)
    """Structured ground truth per sample (the dataset's `{key}.json`); rule rewards read it, judges do not."""

    def __post_init__(self) -> None:
        n = len(self.images)
        if not self.sources:
            self.sources = [None] * n
        if not self.metas:
            self.metas = [{} for _ in range(n)]
        for name in ("prompts", "sources", "metas"):
            if len(getattr(self, name)) != n:
                raise RewardError(f"reward batch: {n} images but {len(getattr(self, name))} {name}")

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class RewardResult:
    scores: torch.Tensor
    """(N,) float32; NaN = no valid score for that sample."""
    components: dict[str, torch.Tensor] = field(default_factory=dict)
    """Named (N,) diagnostics, e.g. the detector's exact-match flag or a cleanliness measure."""
    counts: dict[str, int] = field(default_factory=dict)
    """Event counters, e.g. unparseable judge answers or failed requests."""

    def summary(self, prefix: str = "reward") -> dict[str, float]:
        out: dict[str, float] = {}
        valid = torch.isfinite(self.scores)
        out[f"{prefix}/mean"] = float(self.scores[valid].mean()) if valid.any() else float("nan")
        out[f"{prefix}/invalid"] = float((~valid).sum())
        for name, value in self.components.items():
            v = value[torch.isfinite(value)]
            out[f"{prefix}/{name}"] = float(v.mean()) if v.numel() else float("nan")
        for name, count in self.counts.items():
            out[f"{prefix}/{name}"] = float(count)
        return out


@runtime_checkable
class Reward(Protocol):
    name: str

    def __call__(self, batch: RewardBatch) -> RewardResult: ...


def to_pil(images: torch.Tensor | Sequence[Image.Image] | np.ndarray) -> list[Image.Image]:
    """Images as PIL RGB. Tensors are (N, 3, H, W) in [0, 1]."""
    if isinstance(images, torch.Tensor):
        arr = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
        arr = arr.permute(0, 2, 3, 1).cpu().numpy()
        return [Image.fromarray(a, "RGB") for a in arr]
    if isinstance(images, np.ndarray):
        return [Image.fromarray(a).convert("RGB") for a in images]
    return [im.convert("RGB") for im in images]


class WeightedSum:
    """Compose rewards: score = sum_k w_k * score_k. A sample is invalid (NaN) if any weighted part is invalid.
    Every part's score and diagnostics stay visible under `<name>/...`."""

    name = "weighted"

    def __init__(self, parts: Mapping[str, tuple[Reward, float]]):
        if not parts:
            raise RewardError("a weighted reward needs at least one part; set rl.<stage>.reward.weights")
        self.parts = dict(parts)

    def __call__(self, batch: RewardBatch) -> RewardResult:
        total = torch.zeros(len(batch))
        components: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        for name, (reward, weight) in self.parts.items():
            res = reward(batch)
            if res.scores.shape != (len(batch),):
                raise RewardError(f"reward '{name}' returned {tuple(res.scores.shape)} scores for {len(batch)} images")
            total = total + weight * res.scores.float()
            components[name] = res.scores.float()
            for k, v in res.components.items():
                components[f"{name}/{k}"] = v.float()
            for k, v in res.counts.items():
                counts[f"{name}/{k}"] = counts.get(f"{name}/{k}", 0) + v
        return RewardResult(scores=total, components=components, counts=counts)
