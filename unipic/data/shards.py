"""The dataset format between generation, curation and training (docs/DEVELOPING.md, "The dataset format").

    manifest.json            written LAST (unipic.storage.write_manifest): per-file sha256 + metadata
    index.parquet            one row per sample (INDEX_COLUMNS)
    shards/t2i-000000.tar    WebDataset: {key}.png + {key}.json
    shards/edit-000000.tar   WebDataset: {key}.src.png + {key}.tgt.png + {key}.json

Shards are plain POSIX tars whose members are grouped by key (the name up to the first dot), so the
`webdataset` library and `tar tf` read them as is. Members carry fixed mtime/uid/mode, so the same samples give
byte-identical shards (and the same manifest hash). Reading streams one shard at a time (`tarfile` mode "r|"),
so a dataset never has to fit in memory.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unipic.errors import DataError
from unipic.logging import get_logger

log = get_logger(__name__)

DATASET_FORMAT = "unipic-dataset/1"
SHARD_DIR = "shards"
INDEX_NAME = "index.parquet"
INDEX_COLUMNS = ("sample_id", "kind", "task", "text", "shard", "width", "height", "sha256", "split")
KINDS = ("t2i", "edit")
PRIMARY_IMAGE = {"t2i": "png", "edit": "tgt.png"}  # the member whose sha256 the index records


def split_key(name: str) -> tuple[str, str]:
    """'t2i-train-00000001.src.png' -> ('t2i-train-00000001', 'src.png'): the WebDataset key convention."""
    base = name.rsplit("/", 1)[-1]
    if "." not in base:
        raise DataError(f"tar member '{name}' has no extension; members must be named KEY.EXT")
    key, ext = base.split(".", 1)
    return key, ext


@dataclass
class Record:
    """One sample as stored: its key, the shard it came from, and its files by extension."""

    key: str
    shard: str
    files: dict[str, bytes] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        if "json" not in self.files:
            raise DataError(f"sample '{self.key}' in {self.shard} has no .json member")
        try:
            return json.loads(self.files["json"])
        except json.JSONDecodeError as exc:
            raise DataError(f"sample '{self.key}' in {self.shard}: invalid JSON ({exc})") from None

    def image(self, ext: str = "png") -> Any:
        """Decode an image member to an (H, W, 3) uint8 array."""
        from unipic.data.shapes.render import from_png

        if ext not in self.files:
            raise DataError(f"sample '{self.key}' in {self.shard} has no .{ext} member "
                            f"(it has: {', '.join(sorted(self.files))})")
        return from_png(self.files[ext])

    @property
    def kind(self) -> str:
        return self.shard.rsplit("/", 1)[-1].split("-", 1)[0]


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class ShardWriter:
    """Writes samples into numbered tar shards of `shard_size` samples: `{prefix}-000000.tar`, ...

    Each shard is written under a `.tmp` name and renamed when full or on `close()`, so a crash never leaves a
    complete-looking shard. Use as a context manager."""

    def __init__(self, out_dir: str | Path, prefix: str, shard_size: int) -> None:
        if shard_size < 1:
            raise ValueError("shard_size must be >= 1")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.shard_size = shard_size
        self.shards: list[str] = []
        self._tar: tarfile.TarFile | None = None
        self._tmp: Path | None = None
        self._count = 0

    @property
    def current(self) -> str:
        return f"{self.prefix}-{len(self.shards):06d}.tar"

    def _open(self) -> None:
        self._tmp = self.out_dir / (self.current + ".tmp")
        self._tar = tarfile.open(self._tmp, mode="w", format=tarfile.USTAR_FORMAT)
        self._count = 0

    def _finish(self) -> None:
        if self._tar is None or self._tmp is None:
            return
        self._tar.close()
        final = self.out_dir / self.current
        os.replace(self._tmp, final)
        self.shards.append(final.name)
        self._tar, self._tmp = None, None

    def write(self, key: str, files: dict[str, bytes]) -> str:
        """Add one sample; returns the shard file name it went to."""
        if not key or "." in key or "/" in key:
            raise DataError(f"invalid sample key '{key}': keys must be non-empty without '.' or '/'")
        if self._tar is None:
            self._open()
        assert self._tar is not None
        name = self.current
        for ext, data in files.items():
            self._tar.addfile(_tarinfo(f"{key}.{ext}", len(data)), io.BytesIO(data))
        self._count += 1
        if self._count >= self.shard_size:
            self._finish()
        return name

    def close(self) -> list[str]:
        self._finish()
        return list(self.shards)

    def abort(self) -> None:
        if self._tar is not None:
            self._tar.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
        self._tar, self._tmp = None, None

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: Any, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def iter_shard(path: str | Path, shard_name: str | None = None) -> Iterator[Record]:
    """Stream the samples of one tar shard. A corrupt or truncated shard raises DataError naming it."""
    path = Path(path)
    name = shard_name or path.name
    fix = "regenerate or re-download the dataset (`unipic data generate`, or fetch it again from the store)"
    current: Record | None = None
    try:
        with tarfile.open(path, mode="r|") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, ext = split_key(member.name)
                fh = tar.extractfile(member)
                data = fh.read() if fh is not None else b""
                if len(data) != member.size:
                    raise DataError(f"shard {name}: member {member.name} is truncated; {fix}")
                if current is None or current.key != key:
                    if current is not None:
                        yield current
                    current = Record(key=key, shard=name)
                current.files[ext] = data
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"shard {name} is corrupt or truncated ({type(exc).__name__}: {exc}); {fix}") from None
    if current is not None:
        yield current


def read_shard_members(path: str | Path) -> dict[str, dict[str, bytes]]:
    """{key: {ext: bytes}} for one whole shard: for readers that index a shard by key (small shards only)."""
    return {rec.key: rec.files for rec in iter_shard(path)}


def shard_paths(root: str | Path, kind: str | None = None) -> list[Path]:
    base = Path(root) / SHARD_DIR
    if not base.is_dir():
        raise DataError(f"'{root}' is not a dataset: no {SHARD_DIR}/ folder; create one with `unipic data generate`")
    pattern = f"{kind}-*.tar" if kind else "*.tar"
    return sorted(base.glob(pattern))


def read_index(root: str | Path) -> Any:
    """The dataset's index as a pandas DataFrame (one row per sample)."""
    import pandas as pd

    path = Path(root) / INDEX_NAME
    if not path.is_file():
        raise DataError(f"'{root}' has no {INDEX_NAME}; it is not a complete dataset (regenerate it)")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path} cannot be read ({type(exc).__name__}: {exc}); regenerate the dataset") from None


def write_index(root: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Write index.parquet atomically (temp name, then rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    missing = [c for c in INDEX_COLUMNS if rows and c not in rows[0]]
    if missing:
        raise DataError(f"index rows lack columns {missing}")
    schema = pa.schema([
        ("sample_id", pa.string()), ("kind", pa.string()), ("task", pa.string()), ("text", pa.string()),
        ("shard", pa.string()), ("width", pa.int32()), ("height", pa.int32()), ("sha256", pa.string()),
        ("split", pa.string()),
    ])
    table = pa.Table.from_pylist([{c: r[c] for c in INDEX_COLUMNS} for r in rows], schema=schema)
    path = Path(root) / INDEX_NAME
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def _check_hash(rec: Record, hashes: dict[str, str]) -> None:
    import hashlib

    member = PRIMARY_IMAGE.get(rec.kind, "png")
    want = hashes.get(rec.key)
    if want is None:
        raise DataError(f"sample '{rec.key}' in {rec.shard} is not in the index; the shard does not belong to "
                        "this dataset; regenerate it")
    got = hashlib.sha256(rec.files.get(member, b"")).hexdigest()
    if got != want:
        raise DataError(f"sample '{rec.key}' in {rec.shard}: .{member} has sha256 {got[:12]}..., the index says "
                        f"{want[:12]}...; the shard is corrupt; regenerate or re-fetch the dataset")


def iter_dataset(root: str | Path, kind: str | None = None, split: str | None = None,
                 check_counts: bool = True, verify_hashes: bool = False) -> Iterator[Record]:
    """Stream every sample of a local dataset directory, shard by shard, in order.

    `kind` ("t2i" | "edit") and `split` ("train" | "heldout") filter. With `check_counts`, each shard must hold
    exactly the samples the index lists for it, which catches a shard cut at a member boundary (tar cannot).
    With `verify_hashes`, each sample's primary image must match the index's sha256 (bit rot, a swapped file)."""
    if kind is not None and kind not in KINDS:
        raise DataError(f"unknown kind '{kind}'; choose one of {', '.join(KINDS)}")
    expected: dict[str, int] = {}
    hashes: dict[str, str] = {}
    if check_counts or verify_hashes:
        idx = read_index(root)
        expected = idx.groupby("shard").size().to_dict()
        if verify_hashes:
            hashes = dict(zip(idx["sample_id"], idx["sha256"]))
    for path in shard_paths(root, kind):
        rel = f"{SHARD_DIR}/{path.name}"
        n = 0
        for rec in iter_shard(path, rel):
            n += 1
            if verify_hashes:
                _check_hash(rec, hashes)
            if split is not None and rec.json().get("split") != split:
                continue
            yield rec
        if check_counts and n != expected.get(rel, 0):
            raise DataError(f"shard {rel} holds {n} samples but the index lists {expected.get(rel, 0)}; "
                            "the shard is truncated or does not belong to this index; regenerate the dataset")
