"""Where samples come from. Every source is a lazy iterator of `Sample`s: nothing is loaded whole.

- `ShapesWorldSource`: a ShapesWorld generation spec, rendered on the fly
- `FolderSource`: a folder of images plus a captions JSONL ({"file", "caption", optional "id", "task"})
- `EditTripletSource`: a JSONL of edit triplets ({"source", "instruction", "target", optional "id",
  "category"})
- `ShardSource`: WebDataset tar shards in a local folder or under an s3:// prefix, one shard on disk at a time

A row a source cannot read (bad JSON, missing file) is yielded with `defect` set, so it is counted as a
rejection by the curator rather than silently dropped.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any

from unipic.config.data import ShapesConfig
from unipic.config.store import StoreConfig
from unipic.data.curation.sample import Sample
from unipic.errors import ConfigError, DataError

IMAGE_EXTS = ("png", "jpg", "jpeg", "webp", "bmp")


def _field(row: dict[str, Any], *keys: str, default: Any) -> Any:
    """The first of `keys` present and not null, as given (a NaN or a number is left for the filters)."""
    for key in keys:
        if row.get(key) is not None:
            return row[key]
    return default


def _read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return None


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    if not path.is_file():
        raise DataError(f"{path}: no such JSONL file; pass the captions/triplets file that lists the images")
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                yield lineno, None
                continue
            yield lineno, row if isinstance(row, dict) else None


class FolderSource:
    """Images in a folder, captions in a JSONL next to them (paths relative to the JSONL's folder)."""

    def __init__(self, root: str | Path, captions: str | Path | None = None, prefix: str = "img") -> None:
        self.root = Path(root)
        self.captions = Path(captions) if captions else self.root / "captions.jsonl"
        self.prefix = prefix

    def __iter__(self) -> Iterator[Sample]:
        base = self.captions.parent
        for lineno, row in _jsonl_rows(self.captions):
            origin = f"{self.captions}:{lineno}"
            if row is None:
                yield Sample(f"{self.prefix}-line{lineno}", "t2i", "unknown", None, None, origin=origin,
                             defect="bad_json")
                continue
            file = row.get("file") or row.get("image") or row.get("path")
            sid = row.get("id", row.get("sample_id"))
            sid = str(sid) if sid is not None else f"{self.prefix}-{Path(str(file)).stem if file else lineno}"
            task = _field(row, "task", default="caption")
            if not isinstance(file, str) or not file:
                yield Sample(sid, "t2i", task, row.get("caption"), None, meta=row, origin=origin,
                             defect="missing_file_field")
                continue
            data = _read_file(base / file)
            yield Sample(sid, "t2i", task, row.get("caption", row.get("text")), data, meta=row, origin=origin,
                         split=_field(row, "split", default="train"),
                         defect=None if data is not None else "missing_file")


class EditTripletSource:
    """Edit triplets from JSONL: source image path, instruction, target image path."""

    def __init__(self, path: str | Path, prefix: str = "edit") -> None:
        self.path = Path(path)
        self.prefix = prefix

    def __iter__(self) -> Iterator[Sample]:
        base = self.path.parent
        for lineno, row in _jsonl_rows(self.path):
            origin = f"{self.path}:{lineno}"
            if row is None:
                yield Sample(f"{self.prefix}-line{lineno}", "edit", "unknown", None, None, origin=origin,
                             defect="bad_json")
                continue
            sid = row.get("id", row.get("sample_id"))
            sid = str(sid) if sid is not None else f"{self.prefix}-{lineno:08d}"
            task = _field(row, "category", "task", default="edit")
            src, tgt = row.get("source"), row.get("target")
            if not isinstance(src, str) or not isinstance(tgt, str) or not src or not tgt:
                yield Sample(sid, "edit", task, row.get("instruction"), None, meta=row, origin=origin,
                             defect="missing_file_field")
                continue
            a, b = _read_file(base / src), _read_file(base / tgt)
            yield Sample(sid, "edit", task, row.get("instruction"), a, b, meta=row, origin=origin,
                         split=_field(row, "split", default="train"),
                         defect=None if a is not None and b is not None else "missing_file")


def _sample_from_members(key: str, parts: dict[str, bytes], origin: str) -> Sample:
    meta: dict[str, Any] = {}
    defect = None
    if "json" in parts:
        try:
            loaded = json.loads(parts["json"])
            meta = loaded if isinstance(loaded, dict) else {}
            if not isinstance(loaded, dict):
                defect = "bad_json"
        except (json.JSONDecodeError, UnicodeDecodeError):
            defect = "bad_json"
    is_edit = "src.png" in parts or "tgt.png" in parts or meta.get("kind") == "edit"
    if is_edit:
        image, target = parts.get("src.png"), parts.get("tgt.png")
        text = meta.get("instruction", meta.get("text"))
        task = _field(meta, "category", "task", default="edit")
    else:
        image = next((parts[e] for e in IMAGE_EXTS if e in parts), None)
        target = None
        text = meta.get("caption", meta.get("text"))
        if text is None and "txt" in parts:
            text = parts["txt"].decode("utf-8", errors="replace")
        task = _field(meta, "task", default="caption")
    sid = meta.get("sample_id", key)
    return Sample(str(sid), "edit" if is_edit else "t2i", task, text, image, target, meta=meta,
                  split=_field(meta, "split", default="train"), origin=origin, defect=defect)


def iter_tar(path: str | Path, origin: str | None = None) -> Iterator[Sample]:
    """Stream one WebDataset tar: consecutive members sharing a key (name up to the first dot) form a sample.

    A truncated shard (short member, missing end-of-archive blocks, read error) yields its last, possibly
    incomplete sample with defect `broken_shard` (or a marker sample if the break fell between samples).
    """
    origin = origin or str(path)
    key: str | None = None
    parts: dict[str, bytes] = {}
    broken = False
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = member.name.rsplit("/", 1)[-1]
                k, _, ext = name.partition(".")
                if key is not None and (k != key or ext.lower() in parts):  # a repeated key: a new sample
                    yield _sample_from_members(key, parts, f"{origin}#{key}")
                    parts = {}
                key = k
                fh = tar.extractfile(member)
                data = fh.read() if fh else b""
                if len(data) != member.size:
                    broken = True
                    break
                parts[ext.lower()] = data
            end = tar.offset
        broken = broken or Path(path).stat().st_size < end + 2 * tarfile.BLOCKSIZE
    except (tarfile.TarError, EOFError, OSError):
        broken = True
    if key is None and not broken:
        return
    if broken:
        sid = key if key is not None else f"{Path(str(path)).name}#broken"
        sample = _sample_from_members(sid, parts, f"{origin}#{sid}") if parts else Sample(
            sid, "t2i", "unknown", None, None, origin=origin)
        sample.defect = "broken_shard"
        yield sample
        return
    if key is not None:
        yield _sample_from_members(key, parts, f"{origin}#{key}")


class ShardSource:
    """WebDataset shards (`*.tar`) under a local folder or an s3:// prefix, read one shard at a time."""

    def __init__(self, location: str | Path, store_cfg: StoreConfig | None = None) -> None:
        self.location = str(location)
        self.store_cfg = store_cfg

    def __iter__(self) -> Iterator[Sample]:
        from unipic.storage import is_s3_uri

        if is_s3_uri(self.location):
            yield from self._iter_s3()
            return
        root = Path(self.location)
        tars = sorted(root.rglob("*.tar")) if root.is_dir() else [root]
        if not tars or not tars[0].exists():
            raise DataError(f"{root}: no WebDataset shards (*.tar) found; point at a dataset folder or a tar")
        for tar in tars:
            yield from iter_tar(tar)

    def _iter_s3(self) -> Iterator[Sample]:
        from unipic.storage import ObjectStore

        if self.store_cfg is None:
            raise ConfigError(f"reading {self.location} needs the store config (store.endpoint, credentials)")
        store = ObjectStore(self.store_cfg)
        bucket_uri = self.location.rstrip("/")
        tars = sorted(o.uri for o in store.list(bucket_uri + "/") if o.uri.endswith(".tar"))
        if not tars:
            raise DataError(f"{self.location}: no WebDataset shards (*.tar) under this prefix")
        with tempfile.TemporaryDirectory(prefix="unipic-shard-") as tmp:
            for uri in tars:
                local = store.download_file(uri, Path(tmp) / "shard.tar")
                yield from iter_tar(local, origin=uri)
                local.unlink(missing_ok=True)


class ShapesWorldSource:
    """A ShapesWorld generation spec, rendered lazily: the same samples `unipic data generate` writes
    (same ids, same JSON), without files in between."""

    def __init__(self, spec: ShapesConfig) -> None:
        self.spec = spec

    def __iter__(self) -> Iterator[Sample]:
        from unipic.data.generate import sample_id
        from unipic.data.shapes import make_edit_sample, make_t2i_sample, render, to_png

        origin = f"shapes(seed={self.spec.seed})"
        for i in range(self.spec.n_t2i):
            s = make_t2i_sample(self.spec, i)
            key = sample_id("t2i", s.split, i)
            meta = {"sample_id": key, "kind": "t2i", "seed": self.spec.seed, **s.model_dump(mode="json")}
            yield Sample(key, "t2i", s.task, s.caption, to_png(render(s.scene)), meta=meta, split=s.split,
                         origin=origin)
        for i in range(self.spec.n_edit):
            e = make_edit_sample(self.spec, i)
            key = sample_id("edit", e.split, i)
            meta = {"sample_id": key, "kind": "edit", "seed": self.spec.seed, **e.model_dump(mode="json")}
            yield Sample(key, "edit", e.category, e.instruction, to_png(render(e.source)),
                         to_png(render(e.target)), meta=meta, split=e.split, origin=origin)


def open_source(spec: str, store_cfg: StoreConfig | None = None,
                shapes: ShapesConfig | None = None) -> Iterable[Sample]:
    """Parse a source spec: `shapes`, `folder:DIR[,CAPTIONS.jsonl]`, `edits:TRIPLETS.jsonl`,
    `shards:LOCATION`, or a bare s3:// prefix / local dataset folder (shards)."""
    kind, _, rest = spec.partition(":")
    if spec == "shapes":
        if shapes is None:
            raise ConfigError("source 'shapes' needs the shapes section of the config")
        return ShapesWorldSource(shapes)
    if kind == "folder" and rest:
        root, _, captions = rest.partition(",")
        return FolderSource(root, captions or None)
    if kind == "edits" and rest:
        return EditTripletSource(rest)
    if kind == "shards" and rest:
        return ShardSource(rest, store_cfg)
    if kind == "s3" or Path(spec).exists():
        return ShardSource(spec, store_cfg)
    raise ConfigError(
        f"unknown source '{spec}': use 'shapes', 'folder:DIR[,captions.jsonl]', 'edits:triplets.jsonl', "
        "'shards:DIR_OR_S3_PREFIX' or an s3:// prefix"
    )


def chain_sources(sources: Iterable[Iterable[Sample]]) -> Iterator[Sample]:
    return chain.from_iterable(sources)
