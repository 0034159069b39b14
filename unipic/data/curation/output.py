"""Writes curated samples in the project's dataset format (docs/DEVELOPING.md): WebDataset shards + index.

Shards go through `unipic.data.shards.ShardWriter` (temp name, then rename). Image bytes are kept as they came
(PNG), so the index sha256 is the sha256 of what training reads; other formats are re-encoded to PNG once.
The curated index is the generation index plus hashes and one column per curation signal. As in generation,
an edit's primary image (`sha256`) is its target; `source_sha256` is the source's and `content_sha256` the
pair's (the exact-dedup key).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from unipic.data.curation.dedup import sha256_hex
from unipic.data.curation.sample import Sample
from unipic.data.curation.signals import SIGNALS
from unipic.data.shards import INDEX_COLUMNS as BASE_COLUMNS
from unipic.data.shards import INDEX_NAME, SHARD_DIR, ShardWriter

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SIGNAL_COLUMNS = (*SIGNALS, "agreement", "change_ratio")
INDEX_COLUMNS = (*BASE_COLUMNS, "content_sha256", "source_sha256", "phash", *SIGNAL_COLUMNS)


def as_png(data: bytes, pixels: np.ndarray | None) -> bytes:
    if data.startswith(PNG_MAGIC) or pixels is None:
        return data
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def shard_key(sample_id: str) -> str:
    """WebDataset keys cannot hold '.' or '/' (the key ends at the first dot)."""
    return sample_id.replace(".", "_").replace("/", "_") or "_"


class CuratedWriter:
    """Streams accepted samples into shards (one writer per kind) and collects index rows."""

    def __init__(self, out_dir: str | Path, shard_size: int) -> None:
        self.out_dir = Path(out_dir)
        self._writers = {k: ShardWriter(self.out_dir / SHARD_DIR, k, shard_size) for k in ("t2i", "edit")}
        self.rows: list[dict[str, Any]] = []

    def write(self, s: Sample) -> dict[str, Any]:
        meta = dict(s.meta)
        meta.update({"sample_id": s.sample_id, "kind": s.kind, "task": s.task, "split": s.split})
        meta["instruction" if s.is_edit else "caption"] = s.text
        image = as_png(s.image or b"", s.pixels)
        target = as_png(s.target or b"", s.target_pixels) if s.is_edit else None
        files = {"src.png": image, "tgt.png": target} if target is not None else {"png": image}
        files["json"] = json.dumps(meta, sort_keys=True, default=str).encode()
        shard = f"{SHARD_DIR}/{self._writers[s.kind].write(shard_key(s.sample_id), files)}"
        h, w = s.pixels.shape[:2] if s.pixels is not None else (0, 0)
        first = sha256_hex(image)
        second = sha256_hex(target) if target is not None else None
        row = {
            "sample_id": s.sample_id, "kind": s.kind, "task": s.task, "text": s.text, "shard": shard,
            "width": int(w), "height": int(h), "sha256": second or first, "split": s.split,
            "content_sha256": first if second is None else sha256_hex((first + second).encode()),
            "source_sha256": first if second is not None else None, "phash": s.hashes.get("phash"),
        }
        for col in SIGNAL_COLUMNS:
            row[col] = float(s.signals.get(col, float("nan")))
        self.rows.append(row)
        return row

    def close(self) -> pd.DataFrame:
        """Close the shards and write index.parquet (atomically); returns the index."""
        for writer in self._writers.values():
            writer.close()
        df = index_frame(self.rows)
        tmp = self.out_dir / f"{INDEX_NAME}.tmp"
        df.to_parquet(tmp, index=False)
        os.replace(tmp, self.out_dir / INDEX_NAME)
        return df


def index_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
    for col in ("width", "height"):
        df[col] = df[col].astype("int64")
    for col in SIGNAL_COLUMNS:
        df[col] = df[col].astype("float64")
    return df
