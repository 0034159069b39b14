"""Content hashes. sha256 everywhere: manifests, cache keys and lineage all compare the same digests."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def total_hash(entries: Iterable[tuple[str, str]]) -> str:
    """One digest for a whole tree: sha256 over the sorted `path\\0sha256\\n` lines.

    Independent of listing order and of timestamps, so the same content always gets the same name."""
    h = hashlib.sha256()
    for path, digest in sorted(entries):
        h.update(path.encode("utf-8") + b"\0" + digest.encode("ascii") + b"\n")
    return h.hexdigest()
