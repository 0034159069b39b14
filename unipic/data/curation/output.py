"""Writes curated samples in the project's dataset format (docs/DEVELOPING.md): WebDataset shards + index.

Shards are written under a temporary name and renamed when complete. Image bytes are kept as they came
(PNG), so the index sha256 is the sha256 of what training reads; other formats are re-encoded to PNG once.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from unipic.data.curation.dedup import sha256_hex
from unipic.data.curation.sample import Sample
from unipic.data.curation.signals import SIGNALS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SIGNAL_COLUMNS = (*SIGNALS, "agreement", "change_ratio")
INDEX_COLUMNS = ("sample_id", "kind", "task", "text", "shard", "width", "height", "sha256", "split",
                 "content_sha256", "target_sha256", "phash", *SIGNAL_COLUMNS)


def as_png(data: bytes, pixels: np.ndarray | None) -> bytes:
    if data.startswith(PNG_MAGIC) or pixels is None:
        return data
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


class _ShardStream:
    def __init__(self, root: Path, kind: str, shard_size: int) -> None:
        self.root, self.kind, self.shard_size = root, kind, shard_size
        self.index = -1
        self.count = 0
        self.tar: tarfile.TarFile | None = None
        self.tmp: Path | None = None
        self.final: Path | None = None
        self.rel = ""

    def _open(self) -> None:
        self.index += 1
        self.rel = f"shards/{self.kind}-{self.index:06d}.tar"
        self.final = self.root / self.rel
        self.tmp = self.final.with_suffix(".tar.tmp")
        self.tar = tarfile.open(self.tmp, "w", format=tarfile.USTAR_FORMAT)
        self.count = 0

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()
            assert self.tmp is not None and self.final is not None
            os.replace(self.tmp, self.final)
            self.tar = None

    def write(self, files: dict[str, bytes]) -> str:
        if self.tar is None or self.count >= self.shard_size:
            self.close()
            self._open()
        now = time.time()
        assert self.tar is not None
        for name, data in files.items():
            _add(self.tar, name, data, now)
        self.count += 1
        return self.rel


class CuratedWriter:
    """Streams accepted samples into shards (one stream per kind) and collects index rows."""

    def __init__(self, out_dir: str | Path, shard_size: int) -> None:
        self.out_dir = Path(out_dir)
        (self.out_dir / "shards").mkdir(parents=True, exist_ok=True)
        self._streams = {k: _ShardStream(self.out_dir, k, shard_size) for k in ("t2i", "edit")}
        self.rows: list[dict[str, Any]] = []

    def write(self, s: Sample) -> dict[str, Any]:
        key = s.sample_id.replace(".", "_").replace("/", "_")
        meta = dict(s.meta)
        meta.update({"sample_id": s.sample_id, "kind": s.kind, "task": s.task, "split": s.split})
        meta["instruction" if s.is_edit else "caption"] = s.text
        image = as_png(s.image or b"", s.pixels)
        if s.is_edit:
            target = as_png(s.target or b"", s.target_pixels)
            files = {f"{key}.src.png": image, f"{key}.tgt.png": target}
        else:
            target = None
            files = {f"{key}.png": image}
        files[f"{key}.json"] = json.dumps(meta, sort_keys=True, default=str).encode()
        shard = self._streams[s.kind].write(files)
        h, w = s.pixels.shape[:2] if s.pixels is not None else (0, 0)
        sha = sha256_hex(image)
        tsha = sha256_hex(target) if target is not None else None
        row = {
            "sample_id": s.sample_id, "kind": s.kind, "task": s.task, "text": s.text, "shard": shard,
            "width": int(w), "height": int(h), "sha256": sha, "split": s.split,
            "content_sha256": sha if tsha is None else sha256_hex((sha + tsha).encode()),
            "target_sha256": tsha, "phash": s.hashes.get("phash"),
        }
        for col in SIGNAL_COLUMNS:
            row[col] = float(s.signals.get(col, float("nan")))
        self.rows.append(row)
        return row

    def close(self) -> pd.DataFrame:
        """Close the shards and write index.parquet (atomically); returns the index."""
        for stream in self._streams.values():
            stream.close()
        df = index_frame(self.rows)
        tmp = self.out_dir / "index.parquet.tmp"
        df.to_parquet(tmp, index=False)
        os.replace(tmp, self.out_dir / "index.parquet")
        return df


def index_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
    for col in ("width", "height"):
        df[col] = df[col].astype("int64")
    for col in SIGNAL_COLUMNS:
        df[col] = df[col].astype("float64")
    return df
