"""Quality signals on every sample, and the per-task thresholds applied to them.

For an edit the signals describe the target (the image the model learns to produce). The agreement
score comes from a pluggable scorer (`unipic.data.curation.scorers`); on a batch, signals are measured over
the stacked views and the scorer's `score_batch` (when it has one) judges the batch at once.
"""

from __future__ import annotations

import math

from unipic.config.curation import CurationConfig
from unipic.data.curation.base import Filter
from unipic.data.curation.sample import Sample
from unipic.data.curation.scorers import AgreementScorer, build_scorer, score_many
from unipic.data.curation.signals import image_signals, image_signals_batch


class QualityFilter(Filter):
    name = "quality"

    def __init__(self, cfg: CurationConfig, scorer: AgreementScorer | None = None) -> None:
        super().__init__(cfg)
        self.scorer = scorer if scorer is not None else build_scorer(cfg.scorer)

    def check(self, sample: Sample) -> str | None:
        s = image_signals(sample.analysis("target" if sample.is_edit else "image"))
        return self._verdict(sample, s, self.scorer.score(sample))

    def check_batch(self, samples: list[Sample]) -> list[str | None]:
        signals = image_signals_batch([s.analysis("target" if s.is_edit else "image") for s in samples])
        scores = score_many(self.scorer, samples)
        return [self._verdict(*args) for args in zip(samples, signals, scores, strict=True)]

    def _verdict(self, sample: Sample, s: dict[str, float], agreement: float | None) -> str | None:
        """Attach the signals and apply the sample's task thresholds to them."""
        t = self.thresholds(sample)
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
