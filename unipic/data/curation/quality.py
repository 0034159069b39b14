"""Quality signals on every sample, and the per-task thresholds applied to them.

For an edit the signals describe the target (the image the model learns to produce). The agreement
score comes from a pluggable scorer (`unipic.data.curation.scorers`).
"""

from __future__ import annotations

import math

from unipic.config.curation import CurationConfig
from unipic.data.curation.base import Filter
from unipic.data.curation.sample import Sample
from unipic.data.curation.scorers import AgreementScorer, build_scorer
from unipic.data.curation.signals import image_signals


class QualityFilter(Filter):
    name = "quality"

    def __init__(self, cfg: CurationConfig, scorer: AgreementScorer | None = None) -> None:
        super().__init__(cfg)
        self.scorer = scorer if scorer is not None else build_scorer(cfg.scorer)

    def check(self, sample: Sample) -> str | None:
        t = self.thresholds(sample)
        s = image_signals(sample.analysis("target" if sample.is_edit else "image"))
        agreement = self.scorer.score(sample)
        s["agreement"] = float("nan") if agreement is None else float(agreement)
        sample.signals.update(s)
        if any(math.isnan(v) for k, v in s.items() if k != "agreement"):
            return "nan_signal"
        if t.min_sharpness is not None and s["sharpness"] < t.min_sharpness:
            return "blurry"
        if t.min_colourfulness is not None and s["colourfulness"] < t.min_colourfulness:
            return "dull"
        if t.min_exposure is not None and s["exposure"] < t.min_exposure:
            return "underexposed"
        if t.max_exposure is not None and s["exposure"] > t.max_exposure:
            return "overexposed"
        if t.max_clipped_fraction is not None and s["clipped_fraction"] > t.max_clipped_fraction:
            return "clipped"
        if t.min_agreement is not None and agreement is not None and agreement < t.min_agreement:
            return "disagreement"
        return None
