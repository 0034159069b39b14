"""ShapesWorld rule rewards from the exact detector: GenEval-style for text-to-image, success x preservation
for editing, both with an optional cleanliness penalty.

Why the penalty: a Flow-GRPO run on ShapesWorld learned to leave low-amplitude noise in the background that the
object detector ignores (notes/shapesworld_learnability.md §5). The detector's `cleanliness` (1.0 for a flat
render, towards 0 with background or object noise) makes that noise cost reward.
"""

from __future__ import annotations

import numpy as np
import torch

from unipic.rl.rewards.base import RewardBatch, RewardResult


def _detector():
    from unipic.data.shapes.detect import ShapesDetector

    return ShapesDetector()


class ShapesT2IReward:
    """score = SC/10 - w * (1 - cleanliness), SC the GenEval-strict caption score on 0-10 (10 = exactly the
    requested objects, counts, colours and relation, no extras; partial credit otherwise)."""

    name = "shapes_t2i"

    def __init__(self, cleanliness_weight: float = 0.5):
        self.cleanliness_weight = cleanliness_weight
        self.detector = _detector()

    def __call__(self, batch: RewardBatch) -> RewardResult:
        from unipic.judges.shapes_backend import score_caption
        from unipic.judges.shapes_text import parse_caption

        geneval, exact, clean = [], [], []
        for image, prompt in zip(batch.images, batch.prompts, strict=True):
            det = self.detector.detect(np.asarray(image.convert("RGB")))
            sc, _ = score_caption(det, parse_caption(prompt))
            geneval.append(sc / 10.0)
            exact.append(float(sc == 10))
            clean.append(det.cleanliness)
        g, c = torch.tensor(geneval), torch.tensor(clean)
        scores = g - self.cleanliness_weight * (1.0 - c)
        return RewardResult(scores=scores.float(),
                            components={"geneval": g.float(), "exact": torch.tensor(exact), "cleanliness": c.float()})


class ShapesEditReward:
    """score = success x preservation - w * (1 - cleanliness). Success: the instructed change is visible on
    the instructed object; preservation: the share of what the instruction did not touch that is unchanged."""

    name = "shapes_edit"

    def __init__(self, cleanliness_weight: float = 0.0):
        self.cleanliness_weight = cleanliness_weight
        self.detector = _detector()

    def __call__(self, batch: RewardBatch) -> RewardResult:
        from PIL import Image

        from unipic.judges.shapes_backend import score_edit
        from unipic.judges.shapes_text import parse_instruction

        success, preserved, clean = [], [], []
        for image, instruction, source in zip(batch.images, batch.prompts, batch.sources, strict=True):
            if source is None:
                from unipic.rl.rewards.base import RewardError

                raise RewardError("the ShapesWorld edit reward needs the source image of every sample")
            if image.size != source.size:
                image = image.resize(source.size, Image.NEAREST)
            src = self.detector.detect(np.asarray(source.convert("RGB")))
            out = self.detector.detect(np.asarray(image.convert("RGB")))
            (s, p), _ = score_edit(src, out, parse_instruction(instruction), min(source.size))
            success.append(s / 10.0)
            preserved.append(p / 10.0)
            clean.append(out.cleanliness)
        s_t, p_t, c_t = torch.tensor(success), torch.tensor(preserved), torch.tensor(clean)
        scores = s_t * p_t - self.cleanliness_weight * (1.0 - c_t)
        return RewardResult(scores=scores.float(), components={"success": s_t.float(), "preservation": p_t.float(),
                                                                "cleanliness": c_t.float()})
