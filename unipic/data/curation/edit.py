"""Edit-pair checks: an edit must change something, but not everything (masked difference ratio)."""

from __future__ import annotations

from unipic.data.curation.base import Filter
from unipic.data.curation.sample import Sample
from unipic.data.curation.signals import change_ratio


class EditPairFilter(Filter):
    name = "edit"

    def check(self, sample: Sample) -> str | None:
        if not sample.is_edit:
            return None
        t = self.thresholds(sample)
        if sample.pixels is None or sample.target_pixels is None:
            return "missing_image"
        ratio = change_ratio(sample.pixels, sample.target_pixels, t.edit_pixel_delta)
        sample.signals["change_ratio"] = ratio
        if ratio < t.edit_min_change:
            return "no_op"
        if ratio > t.edit_max_change:
            return "changes_everything"
        return None
