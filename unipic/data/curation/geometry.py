"""Resolution and aspect-ratio limits (per task), and matching sizes for edit pairs."""

from __future__ import annotations

from unipic.data.curation.base import Filter
from unipic.data.curation.sample import Sample


class ResolutionFilter(Filter):
    name = "resolution"

    def check(self, sample: Sample) -> str | None:
        t = self.thresholds(sample)
        assert sample.pixels is not None, "resolution filter runs after decode"
        h, w = sample.pixels.shape[:2]
        if min(h, w) < t.min_side:
            return "too_small"
        if max(h, w) > t.max_side:
            return "too_large"
        if max(h, w) / min(h, w) > t.max_aspect:
            return "aspect_ratio"
        target = sample.target_pixels
        if sample.is_edit and target is not None and target.shape != sample.pixels.shape:
            return "pair_size_mismatch"
        return None
