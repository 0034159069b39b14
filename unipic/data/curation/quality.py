"""Quality signals on every sample, and the per-task thresholds applied to them.

For an edit the signals describe the target (the image the model learns to produce). The agreement
score comes from a pluggable scorer (`unipic.data.curation.scorers`); on a batch, signals are measured over
the stacked views and the scorer's `score_batch` (when it has one) judges the batch at once.
"""

from __future__ import annotations

import math

import numpy as np

from unipic.config.curation import CurationConfig
from unipic.data.curation.base import Filter
from unipic.data.curation.sample import Sample
from unipic.data.curation.scorers import AgreementScorer, build_scorer, score_many
from unipic.data.curation.signals import SUM_COUNT, image_signals, signals_from_sums, stack_sums, view_sums
from unipic.data.curation.stacks import gather


class QualityFilter(Filter):
    name = "quality"

    def __init__(self, cfg: CurationConfig, scorer: AgreementScorer | None = None) -> None:
        super().__init__(cfg)
        self.scorer = scorer if scorer is not None else build_scorer(cfg.scorer)

    def check(self, sample: Sample) -> str | None:
        s = image_signals(sample.analysis("target" if sample.is_edit else "image"))
        return self._verdict(sample, s, self.scorer.score(sample))

    def check_batch(self, samples: list[Sample]) -> list[str | None]:
        signals = _signals(samples)
        scores = score_many(self.scorer, samples)
        return [self._verdict(*args) for args in zip(samples, signals, scores, strict=True)]

    def _verdict(self, sample: Sample, s: dict[str, float], agreement: float | None) -> str | None:
        """Attach the signals and apply the sample's task thresholds to them."""
        t = self.thresholds(sample)
        s["agreement"] = float("nan") if agreement is None else float(agreement)
        sample.signals.update(s)
        if (math.isnan(s["sharpness"]) or math.isnan(s["colourfulness"]) or math.isnan(s["exposure"])
                or math.isnan(s["clipped_fraction"])):
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


def _signals(samples: list[Sample]) -> list[dict[str, float]]:
    """`image_signals` of each sample's analysed view (an edit's target), a batch stack per kernel call."""
    sums = np.empty((len(samples), SUM_COUNT), dtype=np.int64)
    shapes = np.empty((len(samples), 2), dtype=np.int64)
    for which, idx in (("image", [i for i, s in enumerate(samples) if not s.is_edit]),
                       ("target", [i for i, s in enumerate(samples) if s.is_edit])):
        groups, other = gather([samples[i] for i in idx], which)
        for g in groups:
            at = [idx[p] for p in g.positions]
            sums[at] = stack_sums(g.stack, g.rows)
            shapes[at] = g.stack.shape[1:3]
        for p in other:
            sums[idx[p]], shapes[idx[p]] = view_sums(samples[idx[p]].analysis(which))
    return signals_from_sums(sums, shapes)
