"""The curator: runs composable filters over a stream of samples, counts everything, keeps nothing it rejects.

Order matters for cost: cheap checks first (source defects, text), then decode, geometry, exact dedup,
the edit pair, the quality signals, and near-dup last so a bad first copy cannot shadow a good second one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pydantic import BaseModel, Field

from unipic.config.curation import CurationConfig
from unipic.data.curation.base import Filter
from unipic.data.curation.decode import DecodeFilter
from unipic.data.curation.dedup import ExactDedupFilter, NearDupFilter
from unipic.data.curation.edit import EditPairFilter
from unipic.data.curation.geometry import ResolutionFilter
from unipic.data.curation.quality import QualityFilter
from unipic.data.curation.sample import Sample
from unipic.data.curation.scorers import AgreementScorer
from unipic.data.curation.source_check import SourceFilter
from unipic.data.curation.text import TextFilter


# A batch also ends once its encoded images pass this size: a batch is decoded at once, and 64 large photos
# would hold gigabytes of pixels (ShapesWorld batches stay far below it).
BATCH_BYTES = 32 << 20


def _batches(samples: Iterable[Sample], size: int) -> Iterator[list[Sample]]:
    batch: list[Sample] = []
    n_bytes = 0
    for s in samples:
        batch.append(s)
        n_bytes += _encoded_size(s.image) + _encoded_size(s.target)
        if len(batch) >= size or n_bytes >= BATCH_BYTES:
            yield batch
            batch, n_bytes = [], 0
    if batch:
        yield batch


def _encoded_size(data: object) -> int:
    return len(data) if isinstance(data, bytes | bytearray) else 0


class CurationReport(BaseModel):
    """Counts in and out, rejections by reason, per filter and per task: the dataset card's numbers."""

    n_in: int = 0
    n_out: int = 0
    rejected: dict[str, int] = Field(default_factory=dict)
    filters: dict[str, dict[str, Any]] = Field(default_factory=dict)
    in_by_task: dict[str, int] = Field(default_factory=dict)
    out_by_task: dict[str, int] = Field(default_factory=dict)

    @property
    def n_rejected(self) -> int:
        return sum(self.rejected.values())


def default_filters(cfg: CurationConfig, scorer: AgreementScorer | None = None) -> list[Filter]:
    return [
        SourceFilter(cfg),
        TextFilter(cfg),
        DecodeFilter(cfg),
        ResolutionFilter(cfg),
        ExactDedupFilter(cfg),
        EditPairFilter(cfg),
        QualityFilter(cfg, scorer),
        NearDupFilter(cfg),
    ]


class Curator:
    def __init__(self, cfg: CurationConfig, filters: list[Filter] | None = None,
                 scorer: AgreementScorer | None = None) -> None:
        self.cfg = cfg
        self.filters = filters if filters is not None else default_filters(cfg, scorer)
        self._in: Counter[str] = Counter()
        self._out: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()

    def run(self, samples: Iterable[Sample],
            on_reject: Callable[[Sample, str], None] | None = None) -> Iterator[Sample]:
        """Yield the samples every filter accepts, in input order; report each rejection to `on_reject`.

        Samples go through in batches of `cfg.batch_size` (fewer once they hold `BATCH_BYTES`): each filter sees the batch's survivors at once (in
        input order), so vectorised filters pay their Python cost once per batch. Every filter still sees the
        same samples in the same order as one sample at a time, so counts, reasons and outputs are
        identical."""
        for batch in _batches(samples, self.cfg.batch_size):
            reasons: list[str | None] = [None] * len(batch)
            alive = list(range(len(batch)))
            current = list(batch)  # the survivors, rebuilt only after a filter rejected some
            for f in self.filters:
                if not alive:
                    break
                got = f.process_batch(current)
                if got.count(None) == len(got):
                    continue
                keep: list[int] = []
                for i, reason in zip(alive, got, strict=True):
                    if reason is None:
                        keep.append(i)
                    else:
                        reasons[i] = reason
                alive = keep
                current = [batch[i] for i in alive]
            for sample, reason in zip(batch, reasons, strict=True):
                if self._settle(sample, reason, on_reject):
                    yield sample

    def _settle(self, sample: Sample, reason: str | None,
                on_reject: Callable[[Sample, str], None] | None) -> bool:
        """Count one sample's verdict; True when it is kept."""
        task = sample.task if isinstance(sample.task, str) and sample.task else "(invalid)"
        self._in[task] += 1
        if reason:
            self._rejected[reason] += 1
            sample.release_pixels()
            if on_reject is not None:
                on_reject(sample, reason)
            return False
        self._out[task] += 1
        return True

    def report(self) -> CurationReport:
        return CurationReport(
            n_in=sum(self._in.values()),
            n_out=sum(self._out.values()),
            rejected=dict(self._rejected.most_common()),
            filters={f.name: f.counters() for f in self.filters},
            in_by_task=dict(sorted(self._in.items())),
            out_by_task=dict(sorted(self._out.items())),
        )
