"""Before/after evaluation of an RL stage: the ShapesWorld GenEval-style score and edit score of one model.

Both tasks are scored after each stage (the paper's Table 4 asks whether each RL stage helps or hurts the other
task). Samples use the ODE sampler (a = 0) with more steps than training, fixed prompts and fixed noise, so the
before and after images of one prompt differ only by the weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from unipic.rl.rewards import RewardBatch
from unipic.rl.rewards.shapes import ShapesEditReward, ShapesT2IReward
from unipic.rl.rollout import Condition, rollout_chunk, rollout_sigmas


@dataclass
class TaskScore:
    n: int
    score: float
    """T2I: mean GenEval-style score (partial credit); edit: mean success x preservation."""
    accuracy: float
    """T2I: share exactly right (GenEval's strict accuracy); edit: strict success (the instruction satisfied and
    everything else preserved)."""
    cleanliness: float
    score_se: float = 0.0
    """Standard error of `score` over the n images (std / sqrt(n))."""
    images: list[Image.Image] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, float]:
        return {"n": self.n, "score": self.score, "score_se": self.score_se, "accuracy": self.accuracy,
                "cleanliness": self.cleanliness}


def _generate(pipe: Any, conditions: list[Condition], *, steps: int, guidance: float, seed: int,
              batch_size: int) -> list[Image.Image]:
    sig = rollout_sigmas(pipe, steps)
    images: list[Image.Image] = []
    for i in range(0, len(conditions), batch_size):
        gen = torch.Generator().manual_seed(seed + i)
        with torch.no_grad():
            chunk = rollout_chunk(pipe, conditions[i:i + batch_size], sigmas=sig, noise_level=0.0,
                                  guidance_scale=guidance, generator=gen)
        images.extend(chunk.images)
    return images


def score_task(pipe: Any, kind: str, conditions: list[Condition], *, steps: int, guidance: float, seeds: int,
               seed: int = 0, batch_size: int = 16) -> TaskScore | None:
    """Generate `seeds` images per condition with the ODE sampler and score them with the exact detector."""
    if not conditions:
        return None
    conds = [c for c in conditions for _ in range(seeds)]
    images = _generate(pipe, conds, steps=steps, guidance=guidance, seed=seed, batch_size=batch_size)
    batch = RewardBatch(images=images, prompts=[c.prompt for c in conds], sources=[c.source for c in conds],
                        metas=[c.meta for c in conds])
    if kind == "t2i":
        res = ShapesT2IReward(cleanliness_weight=0.0)(batch)
        acc = res.components["exact"]
    else:
        res = ShapesEditReward(cleanliness_weight=0.0)(batch)
        acc = res.components["strict"]
    n = len(conds)
    se = float(res.scores.std(unbiased=True) / n**0.5) if n > 1 else 0.0
    return TaskScore(n=n, score=float(res.scores.mean()), accuracy=float(acc.mean()),
                     cleanliness=float(res.components["cleanliness"].mean()), score_se=se, images=images)
