"""The manifest: what makes a directory or an s3:// prefix a published artifact.

`manifest.json` lists every file with its sha256 and size, a total hash over the tree, when it was made and
caller metadata (lineage, counts). It is written LAST, so a reader that finds one knows the files are
complete, and it verifies them against it. Local directories and object-store prefixes use the same format
and the same code.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from unipic.errors import IntegrityError, StorageError
from unipic.logging import get_logger
from unipic.storage.hashing import sha256_file, total_hash

log = get_logger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "unipic-manifest/1"


class FileEntry(BaseModel):
    sha256: str
    size: int


class Manifest(BaseModel):
    format: str = MANIFEST_FORMAT
    created_at: str = Field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat())
    files: dict[str, FileEntry]
    total_sha256: str
    total_size: int
    n_files: int
    metadata: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def build(cls, files: Mapping[str, FileEntry | dict[str, Any]], metadata: Any = None) -> "Manifest":
        entries = {k: FileEntry.model_validate(v) for k, v in sorted(files.items())}
        return cls(
            files=entries,
            total_sha256=total_hash((p, e.sha256) for p, e in entries.items()),
            total_size=sum(e.size for e in entries.values()),
            n_files=len(entries),
            metadata=metadata_dict(metadata),
        )

    def to_json(self) -> str:
        return json.dumps(self.model_dump(), indent=2, sort_keys=False, default=str) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, where: str) -> "Manifest":
        try:
            data = json.loads(text)
            manifest = cls.model_validate(data)
        except (ValueError, ValidationError) as exc:
            raise StorageError(f"{where}: manifest is not valid ({exc.__class__.__name__}: {exc}); "
                               "republish the artifact") from None
        if manifest.format != MANIFEST_FORMAT:
            raise StorageError(f"{where}: manifest format '{manifest.format}' is not '{MANIFEST_FORMAT}'")
        expected = total_hash((p, e.sha256) for p, e in manifest.files.items())
        if expected != manifest.total_sha256:
            raise IntegrityError(f"{where}: manifest total_sha256 does not match its file list; it was edited "
                                 "by hand or truncated; republish the artifact")
        return manifest


def metadata_dict(metadata: Any) -> dict[str, Any]:
    """Accept a dict, a pydantic model (e.g. `unipic.lineage.Lineage`) or None."""
    if metadata is None:
        return {}
    if isinstance(metadata, BaseModel):
        return json.loads(metadata.model_dump_json())
    if isinstance(metadata, dict):
        return json.loads(json.dumps(metadata, default=str))
    raise TypeError(f"manifest metadata must be a dict or a pydantic model, got {type(metadata).__name__}")


def _check_relpath(rel: str) -> str:
    if rel.startswith("/") or any(part in ("", ".", "..") for part in rel.split("/")):
        raise StorageError(f"unsafe path '{rel}' in a manifest; refusing to read or write outside the artifact")
    return rel


def scan_dir(local_dir: str | Path) -> dict[str, FileEntry]:
    """Hash every regular file under `local_dir` (except a manifest at its root), keyed by POSIX relpath."""
    root = Path(local_dir)
    if not root.is_dir():
        raise StorageError(f"'{root}' is not a directory")
    out: dict[str, FileEntry] = {}
    for path in sorted(root.rglob("*")):
        if path.is_dir():
            continue
        rel = path.relative_to(root).as_posix()
        if rel == MANIFEST_NAME or path.name.startswith(".tmp-"):
            continue
        if not path.is_file():
            raise StorageError(f"'{path}' is not a regular file; manifests cover regular files only")
        out[rel] = FileEntry(sha256=sha256_file(path), size=path.stat().st_size)
    return out


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temp name in the same directory, fsync, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + path.name, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_manifest(local_dir: str | Path, metadata: Any = None) -> Manifest:
    """Hash a local directory and write its `manifest.json` (last, atomically)."""
    manifest = Manifest.build(scan_dir(local_dir), metadata)
    atomic_write_bytes(Path(local_dir) / MANIFEST_NAME, manifest.to_json().encode())
    return manifest


def read_local_manifest(local_dir: str | Path) -> Manifest:
    path = Path(local_dir) / MANIFEST_NAME
    if not path.is_file():
        raise StorageError(f"'{local_dir}' has no {MANIFEST_NAME}: not published or incomplete; "
                           "write it with unipic.storage.write_manifest after the files are complete")
    return Manifest.from_json(path.read_bytes(), str(path))


def verify_file(path: Path, rel: str, entry: FileEntry, where: str) -> None:
    if not path.is_file():
        raise IntegrityError(f"{where}: '{rel}' is listed in the manifest but missing")
    size = path.stat().st_size
    if size != entry.size:
        raise IntegrityError(f"{where}: '{rel}' has {size} bytes, the manifest says {entry.size}; "
                             "the file is truncated or was changed after publishing")
    digest = sha256_file(path)
    if digest != entry.sha256:
        raise IntegrityError(f"{where}: '{rel}' has sha256 {digest[:12]}..., the manifest says "
                             f"{entry.sha256[:12]}...; the file is corrupt or was changed after publishing")


def verify_dir(local_dir: str | Path) -> Manifest:
    """Check every file listed in the directory's manifest (size and sha256). Extra files are ignored."""
    manifest = read_local_manifest(local_dir)
    root = Path(local_dir)
    for rel, entry in manifest.files.items():
        verify_file(root / _check_relpath(rel), rel, entry, str(root))
    return manifest
