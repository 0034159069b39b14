"""Curate a stream of samples into a local dataset folder: shards, index, rejection log, metrics, card.

This is the part of the stage that needs no services. `unipic.data.curation.stage` adds the gate,
publishing, Feast and DVC around it.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from unipic.config.curation import CurationConfig
from unipic.data.curation.card import write_card
from unipic.data.curation.output import CuratedWriter
from unipic.data.curation.pipeline import CurationReport, Curator
from unipic.data.curation.sample import Sample
from unipic.data.curation.scorers import AgreementScorer
from unipic.errors import DataError
from unipic.logging import get_logger
from unipic.progress import progress_bar

log = get_logger(__name__)


def _card_cell(s: Sample) -> tuple[np.ndarray, str] | None:
    if s.pixels is None:
        return None
    if s.is_edit and s.target_pixels is not None and s.target_pixels.shape == s.pixels.shape:
        gap = np.full((s.pixels.shape[0], 2, 3), 160, np.uint8)
        return np.concatenate([s.pixels[..., :3], gap, s.target_pixels[..., :3]], axis=1), str(s.text)
    return s.pixels[..., :3], str(s.text)


def curate_to_dir(samples: Iterable[Sample], cfg: CurationConfig, out_dir: str | Path,
                  scorer: AgreementScorer | None = None, lineage: dict | None = None,
                  metrics_every: int = 500) -> tuple[CurationReport, pd.DataFrame]:
    """Run the curator over `samples`, writing the curated dataset into a fresh `out_dir`."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out} is not empty; curation writes into a fresh folder (remove it or pick one)")
    out.mkdir(parents=True, exist_ok=True)
    curator = Curator(cfg, scorer=scorer)
    writer = CuratedWriter(out, cfg.shard_size)
    cells: dict[str, list[tuple[np.ndarray, str]]] = {"t2i": [], "edit": []}
    per_kind = max(cfg.card_samples // 2, 1) if cfg.card_samples else 0
    t0 = time.perf_counter()
    with (out / "rejections.jsonl").open("w") as rej, (out / "metrics.jsonl").open("w") as met, \
            progress_bar(total=None, desc="curate", unit="sample") as bar:

        def on_reject(s: Sample, reason: str) -> None:
            row = {"sample_id": str(s.sample_id), "reason": reason, "origin": s.origin}
            rej.write(json.dumps(row) + "\n")
            bar.update(1)

        for i, s in enumerate(curator.run(samples, on_reject=on_reject), 1):
            writer.write(s)
            if len(cells[s.kind]) < per_kind and (cell := _card_cell(s)) is not None:
                cells[s.kind].append(cell)
            s.release_pixels()
            bar.update(1)
            if i % metrics_every == 0:
                rep = curator.report()
                dt = time.perf_counter() - t0
                met.write(json.dumps({"n_in": rep.n_in, "n_out": rep.n_out, "elapsed_s": dt,
                                      "samples_per_s": rep.n_in / max(dt, 1e-9)}) + "\n")
        report = curator.report()
        elapsed = time.perf_counter() - t0
        met.write(json.dumps({"n_in": report.n_in, "n_out": report.n_out, "elapsed_s": elapsed,
                              "samples_per_s": report.n_in / max(elapsed, 1e-9), "final": True}) + "\n")
    index = writer.close()
    if not any((out / "shards").iterdir()):
        shutil.rmtree(out / "shards")
    write_card(out, report, index, cells["t2i"] + cells["edit"], extra=lineage)
    log.info("curated %d of %d samples into %s (%.1f samples/s)", report.n_out, report.n_in, out,
             report.n_in / max(elapsed, 1e-9))
    return report, index
