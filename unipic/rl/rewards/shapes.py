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
    """score = geneval - w * (1 - cleanliness). `geneval` is the ShapesWorld scorer's score against the sample's
    structured spec (`meta["spec"]`, from the dataset's ground truth): 1 for exactly the requested objects,
    counts, colours and relation with no extras, partial credit otherwise. Without a spec the caption is parsed
    (`unipic.judges.shapes_text`) and scored the same way on 0-10, divided by 10."""

    name = "shapes_t2i"

    def __init__(self, cleanliness_weight: float = 0.5):
        self.cleanliness_weight = cleanliness_weight
        self.detector = _detector()

    def __call__(self, batch: RewardBatch) -> RewardResult:
        from unipic.judges.shapes_backend import score_caption
        from unipic.judges.shapes_text import parse_caption

        from unipic.data.shapes.score import score_t2i_detection

        geneval, exact, clean = [], [], []
        for image, prompt, meta in zip(batch.images, batch.prompts, batch.metas, strict=True):
            det = self.detector.detect(np.asarray(image.convert("RGB")))
            spec = meta.get("spec")
            if spec is not None:
                res = score_t2i_detection(det, spec)
                geneval.append(float(res.score))
                exact.append(float(res.correct))
            else:
                sc, _ = score_caption(det, parse_caption(prompt))
                geneval.append(sc / 10.0)
                exact.append(float(sc == 10))
            clean.append(det.cleanliness)
        g, c = torch.tensor(geneval), torch.tensor(clean)
        scores = g - self.cleanliness_weight * (1.0 - c)
        return RewardResult(scores=scores.float(),
                            components={"geneval": g.float(), "exact": torch.tensor(exact), "cleanliness": c.float()})


class ShapesEditReward:
    """score = instruction satisfied x preservation - w * (1 - cleanliness). With the sample's structured edit
    spec (`meta["spec"]`) the ShapesWorld edit scorer decides both parts; without one the instruction is parsed
    and scored by the judge backend's rules (success 0/1, preservation share)."""

    name = "shapes_edit"

    def __init__(self, cleanliness_weight: float = 0.0):
        self.cleanliness_weight = cleanliness_weight
        self.detector = _detector()

    def __call__(self, batch: RewardBatch) -> RewardResult:
        from PIL import Image

        from unipic.data.shapes.score import score_edit_detections
        from unipic.judges.shapes_backend import score_edit
        from unipic.judges.shapes_text import parse_instruction

        success, preserved, clean, strict = [], [], [], []
        for image, instruction, source, meta in zip(batch.images, batch.prompts, batch.sources, batch.metas,
                                                    strict=True):
            if source is None:
                from unipic.rl.rewards.base import RewardError

                raise RewardError("the ShapesWorld edit reward needs the source image of every sample")
            if image.size != source.size:
                image = image.resize(source.size, Image.NEAREST)
            src = self.detector.detect(np.asarray(source.convert("RGB")))
            out = self.detector.detect(np.asarray(image.convert("RGB")))
            spec = meta.get("spec") or meta.get("edit_spec")
            if spec is not None:
                res = score_edit_detections(src, out, spec)
                success.append(float(res.instruction_score))
                preserved.append(float(res.preservation))
                strict.append(float(res.success))
            else:
                (s, p), _ = score_edit(src, out, parse_instruction(instruction), min(source.size))
                success.append(s / 10.0)
                preserved.append(p / 10.0)
                strict.append(float(s == 10 and p == 10))
            clean.append(out.cleanliness)
        s_t, p_t, c_t = torch.tensor(success), torch.tensor(preserved), torch.tensor(clean)
        scores = s_t * p_t - self.cleanliness_weight * (1.0 - c_t)
        return RewardResult(scores=scores.float(), components={"success": s_t.float(), "preservation": p_t.float(),
                                                                "cleanliness": c_t.float(),
                                                                "strict": torch.tensor(strict)})
