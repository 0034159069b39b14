"""A curation filter: a name, its config, counters, and one method that says why a sample is rejected.

Filters compose in a list (`unipic.data.curation.pipeline.Curator`). A rejection reason is
"<filter>:<why>" so the dataset card can group by filter or by cause.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from unipic.config.curation import CurationConfig, Thresholds
from unipic.data.curation.sample import Sample


class Filter:
    """Subclasses set `name` and implement `check`, returning a short reason or None to keep the sample
    (and may override `check_batch`)."""

    name: str = "filter"

    def __init__(self, cfg: CurationConfig) -> None:
        self.cfg = cfg
        self.seen = 0
        self.passed = 0
        self.rejected: Counter[str] = Counter()
        self.seconds = 0.0
        self._thresholds: dict[str, Thresholds] = {}

    def thresholds(self, sample: Sample) -> Thresholds:
        """The sample's task thresholds, resolved once per task."""
        t = self._thresholds.get(sample.task)
        if t is None:
            t = self._thresholds[sample.task] = self.cfg.thresholds_for(sample.task)
        return t

    def check(self, sample: Sample) -> str | None:
        raise NotImplementedError

    def check_batch(self, samples: list[Sample]) -> list[str | None]:
        """`check` for each sample, in order. Filters with vectorisable work (signals, hashes, the detector)
        override this to process the batch at once; the result must equal the per-sample loop's."""
        return [self.check(s) for s in samples]

    def __call__(self, sample: Sample) -> str | None:
        return self.process_batch([sample])[0]

    def process_batch(self, samples: list[Sample]) -> list[str | None]:
        """The rejection reason ("<filter>:<why>") or None per sample, counted as `__call__` counts one."""
        self.seen += len(samples)
        t0 = time.perf_counter()
        whys = [self.check(samples[0])] if len(samples) == 1 else self.check_batch(samples)
        self.seconds += time.perf_counter() - t0
        if whys.count(None) == len(whys):  # all kept: nothing to name or count but the passes
            self.passed += len(whys)
            return list(whys)
        reasons: list[str | None] = []
        for why in whys:
            if why is None:
                self.passed += 1
                reasons.append(None)
                continue
            reason = f"{self.name}:{why}"
            self.rejected[reason] += 1
            reasons.append(reason)
        return reasons

    def counters(self) -> dict[str, Any]:
        return {"seen": self.seen, "passed": self.passed, "rejected": dict(self.rejected),
                "seconds": round(self.seconds, 4)}
