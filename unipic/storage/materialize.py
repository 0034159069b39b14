"""`materialize`: turn an artifact reference (local path or s3:// URI) into a verified local directory.

Stages take inputs as `uri_or_path`, so the same code runs on a laptop (paths) and in a KFP pod (URIs).
Fetched prefixes go into a content-addressed cache keyed by the manifest's total hash: the same content is
downloaded once, and a changed artifact at the same URI gets a new cache entry.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from unipic.config.store import StoreConfig
from unipic.errors import IntegrityError, StorageError
from unipic.logging import get_logger
from unipic.storage.manifest import read_local_manifest
from unipic.storage.uri import is_s3_uri

log = get_logger(__name__)


def cache_path(cache_dir: str | Path, total_sha256: str) -> Path:
    return Path(cache_dir) / "sha256" / total_sha256


def _cached_ok(path: Path, total_sha256: str) -> bool:
    """A cache entry is trusted when its manifest has the expected total hash and every file has its size.

    Full re-hashing happens on fetch; entries are written by rename only, so a present entry is complete."""
    try:
        manifest = read_local_manifest(path)
    except (StorageError, IntegrityError):
        return False
    if manifest.total_sha256 != total_sha256:
        return False
    for rel, entry in manifest.files.items():
        f = path / rel
        if not f.is_file() or f.stat().st_size != entry.size:
            return False
    return True


def materialize(uri_or_path: str | Path, store_cfg: StoreConfig | None = None,
                cache_dir: str | Path | None = None) -> Path:
    """A local path is returned as is (it must exist); an s3:// URI is fetched, verified, and cached."""
    if not is_s3_uri(uri_or_path):
        path = Path(uri_or_path)
        if not path.exists():
            raise StorageError(f"input '{path}' does not exist; give an existing local path or an s3:// URI")
        return path
    if store_cfg is None:
        raise StorageError(f"'{uri_or_path}' is an s3:// URI but no store config was given; pass the StoreConfig")
    from unipic.storage.client import ObjectStore

    uri = str(uri_or_path)
    store = ObjectStore(store_cfg)
    manifest = store.read_manifest(uri)
    cache_root = Path(cache_dir) if cache_dir is not None else store_cfg.cache_dir
    final = cache_path(cache_root, manifest.total_sha256)
    if _cached_ok(final, manifest.total_sha256):
        log.info("using cached %s for %s", final, uri)
        return final
    if final.exists():
        log.warning("cache entry %s is incomplete or damaged; fetching again", final)
        shutil.rmtree(final, ignore_errors=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{manifest.total_sha256[:12]}-", dir=final.parent))
    try:
        fetched = store.fetch(uri, tmp)
        if fetched.total_sha256 != manifest.total_sha256:
            raise IntegrityError(f"{uri} was republished while it was being fetched; run again")
        try:
            os.rename(tmp, final)
        except OSError:
            if not _cached_ok(final, manifest.total_sha256):
                raise
            log.info("another process cached %s first; using it", uri)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
