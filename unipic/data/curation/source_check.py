"""The first filter: rows a source could not read, fields that are not what they claim (a NaN task, an
unknown split), and repeated sample ids (the first one wins)."""

from __future__ import annotations

from unipic.config.curation import CurationConfig
from unipic.data.curation.base import Filter
from unipic.data.curation.sample import Sample

SPLITS = ("train", "heldout")


class SourceFilter(Filter):
    name = "source"

    def __init__(self, cfg: CurationConfig) -> None:
        super().__init__(cfg)
        self._ids: set[str] = set()

    def check(self, sample: Sample) -> str | None:
        if sample.defect:
            return sample.defect
        if not isinstance(sample.sample_id, str) or not sample.sample_id:
            return "missing_id"
        if not isinstance(sample.task, str) or not sample.task.strip() or sample.task.lower() == "nan":
            return "bad_task"
        if sample.split not in SPLITS:
            return "bad_split"
        if sample.sample_id in self._ids:
            return "duplicate_id"
        self._ids.add(sample.sample_id)
        return None
