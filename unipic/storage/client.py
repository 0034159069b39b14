"""`ObjectStore`: the one object-store client (minio SDK) for SeaweedFS locally and MinIO in a cluster.

Everything addresses objects by `s3://bucket/key` URIs. Short timeouts and a few retries (StoreConfig) make
an unreachable store fail in seconds. Directories are published atomically with a manifest written last
(see `unipic.storage.manifest`); readers trust only prefixes that have one and verify every hash.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject

from unipic.config.store import StoreConfig
from unipic.errors import IntegrityError, StorageError
from unipic.logging import get_logger
from unipic.progress import progress
from unipic.storage.errors import ObjectNotFoundError, translate_errors
from unipic.storage.manifest import (
    MANIFEST_NAME,
    FileEntry,
    Manifest,
    _check_relpath,
    atomic_write_bytes,
    scan_dir,
    verify_file,
)
from unipic.storage.uri import S3Uri, join_uri, parse_s3_uri

log = get_logger(__name__)

# ObjectStore has a method named `list`; these aliases keep annotations inside the class unambiguous.
_StrList = list[str]
_PathList = list[Path]


@dataclass(frozen=True)
class StoredObject:
    uri: str
    key: str
    size: int
    is_dir: bool = False


_ObjectList = list[StoredObject]


def make_http_client(cfg: StoreConfig) -> urllib3.PoolManager:
    """A pool with short timeouts and bounded retries, so a dead endpoint fails in seconds, not minutes."""
    retry = urllib3.Retry(
        total=cfg.retries,
        connect=cfg.retries,
        read=cfg.retries,
        backoff_factor=0.2,
        backoff_max=2.0,
        status_forcelist=(500, 502, 503, 504),
        allowed_methods=None,
        raise_on_status=False,
    )
    timeout = urllib3.Timeout(connect=min(cfg.timeout_s, 5.0), read=cfg.timeout_s)
    kwargs: dict[str, Any] = {"timeout": timeout, "retries": retry, "maxsize": 10}
    if cfg.secure:
        import certifi

        kwargs.update(cert_reqs="CERT_REQUIRED", ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where())
    return urllib3.PoolManager(**kwargs)


class ObjectStore:
    """Thin, typed layer over `minio.Minio` with URIs, clear errors, verified downloads and atomic publish."""

    def __init__(self, cfg: StoreConfig):
        self.cfg = cfg
        self.client = Minio(
            cfg.endpoint,
            access_key=cfg.access_key.get_secret_value(),
            secret_key=cfg.secret_key.get_secret_value(),
            secure=cfg.secure,
            region=cfg.region,
            http_client=make_http_client(cfg),
        )

    def __repr__(self) -> str:
        return f"ObjectStore(endpoint={self.cfg.endpoint!r})"

    def _errors(self, what: str):
        return translate_errors(self.cfg, what)

    # -- buckets ---------------------------------------------------------------------------------------
    def list_buckets(self) -> _StrList:
        with self._errors("list buckets"):
            return sorted(b.name for b in self.client.list_buckets())

    def check(self) -> None:
        """Raise StorageError unless the endpoint answers and accepts our credentials."""
        self.list_buckets()

    def ensure_bucket(self, name: str) -> bool:
        """Create the bucket if missing. Returns True when it was created."""
        parse_s3_uri(f"s3://{name}/")
        with self._errors(f"create bucket '{name}'"):
            if self.client.bucket_exists(name):
                return False
            self.client.make_bucket(name)
        log.info("created bucket %s at %s", name, self.cfg.endpoint)
        return True

    def ensure_buckets(self) -> _StrList:
        """Create every configured bucket (store.buckets); returns those created."""
        return [b for b in self.cfg.buckets.model_dump().values() if self.ensure_bucket(b)]

    # -- objects ---------------------------------------------------------------------------------------
    def exists(self, uri: str) -> bool:
        u = parse_s3_uri(uri)
        if not u.key or u.key.endswith("/"):
            return bool(self.list(uri, recursive=True, limit=1))
        try:
            with self._errors(f"stat {uri}"):
                self.client.stat_object(u.bucket, u.key)
            return True
        except ObjectNotFoundError:
            return False

    def size(self, uri: str) -> int:
        u = parse_s3_uri(uri)
        with self._errors(f"stat {uri}"):
            return int(self.client.stat_object(u.bucket, u.key).size or 0)

    def write_bytes(self, uri: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        u = self._object_uri(uri)
        with self._errors(f"write {uri}"):
            self.client.put_object(u.bucket, u.key, io.BytesIO(data), len(data), content_type=content_type)

    def read_bytes(self, uri: str) -> bytes:
        u = self._object_uri(uri)
        with self._errors(f"read {uri}"):
            resp = self.client.get_object(u.bucket, u.key)
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

    def write_json(self, uri: str, obj: Any) -> None:
        self.write_bytes(uri, (json.dumps(obj, indent=2, default=str) + "\n").encode(),
                         content_type="application/json")

    def read_json(self, uri: str) -> Any:
        data = self.read_bytes(uri)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise StorageError(f"{uri} is not valid JSON ({exc})") from None

    def upload_file(self, path: str | Path, uri: str) -> None:
        path = Path(path)
        if not path.is_file():
            raise StorageError(f"cannot upload '{path}': no such file")
        u = self._object_uri(uri)
        with self._errors(f"upload {path} to {uri}"):
            self.client.fput_object(u.bucket, u.key, str(path))

    def download_file(self, uri: str, path: str | Path) -> Path:
        """Download to a temp name next to `path`, then rename: a failed download leaves nothing behind."""
        u = self._object_uri(uri)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + path.name, dir=path.parent)
        os.close(fd)
        try:
            with self._errors(f"download {uri}"):
                resp = self.client.get_object(u.bucket, u.key)
                try:
                    with open(tmp, "wb") as f:
                        for chunk in resp.stream(1 << 20):
                            f.write(chunk)
                finally:
                    resp.close()
                    resp.release_conn()
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def list(self, uri: str, recursive: bool = True, limit: int | None = None) -> _ObjectList:
        """Objects under a prefix, sorted by key. Non-recursive listings include 'directories' (is_dir)."""
        u = parse_s3_uri(uri)
        out: _ObjectList = []
        with self._errors(f"list {uri}"):
            for obj in self.client.list_objects(u.bucket, prefix=u.key or None, recursive=recursive):
                out.append(StoredObject(uri=f"s3://{u.bucket}/{obj.object_name}", key=obj.object_name,
                                        size=int(obj.size or 0), is_dir=bool(obj.is_dir)))
                if limit is not None and len(out) >= limit:
                    break
        return sorted(out, key=lambda o: o.key)

    def delete(self, uri: str) -> None:
        u = self._object_uri(uri)
        with self._errors(f"delete {uri}"):
            self.client.remove_object(u.bucket, u.key)

    def delete_prefix(self, uri: str) -> int:
        """Delete every object under a prefix ('directory'); returns how many were deleted."""
        u = parse_s3_uri(uri)
        if not u.key:
            raise StorageError(f"refusing to delete a whole bucket's content ({uri}); give a key prefix")
        keys = [o.key for o in self.list(str(S3Uri(u.bucket, u.prefix)), recursive=True)]
        self._delete_keys(u.bucket, keys)
        return len(keys)

    def _delete_keys(self, bucket: str, keys: _StrList) -> None:
        if not keys:
            return
        with self._errors(f"delete {len(keys)} objects in s3://{bucket}/"):
            errors = list(self.client.remove_objects(bucket, (DeleteObject(k) for k in keys)))
        if errors:
            first = errors[0]
            raise StorageError(f"could not delete {len(errors)} objects in s3://{bucket}/, first: "
                               f"{first.name}: {first.code} {first.message}")

    # -- directories -----------------------------------------------------------------------------------
    def upload_dir(self, local_dir: str | Path, uri: str) -> _StrList:
        """Upload every file under `local_dir` to `uri/<relpath>`; returns the URIs written."""
        root = Path(local_dir)
        if not root.is_dir():
            raise StorageError(f"cannot upload '{root}': not a directory")
        files = sorted(p for p in root.rglob("*") if p.is_file())
        out = []
        for path in progress(files, total=len(files), desc=f"upload {root.name}", unit="file"):
            target = join_uri(uri, path.relative_to(root).as_posix())
            self.upload_file(path, target)
            out.append(target)
        return out

    def download_dir(self, uri: str, local_dir: str | Path) -> _PathList:
        """Download every object under the prefix `uri` into `local_dir` (no verification; see `fetch`)."""
        u = parse_s3_uri(uri)
        objects = [o for o in self.list(str(S3Uri(u.bucket, u.prefix)), recursive=True)
                   if not o.is_dir and not o.key.endswith("/")]
        if not objects:
            raise StorageError(f"nothing under {uri}; check the URI")
        out = []
        for obj in progress(objects, total=len(objects), desc="download", unit="file"):
            rel = _check_relpath(obj.key[len(u.prefix):])
            out.append(self.download_file(obj.uri, Path(local_dir) / rel))
        return out

    # -- atomic publish ----------------------------------------------------------------------------------
    def publish_dir(self, local_dir: str | Path, uri: str, metadata: Any = None) -> Manifest:
        """Publish a directory: files first, `manifest.json` last.

        On a republish the old manifest is deleted *first*, so while files change no reader sees a manifest
        that does not match them; objects of the old version that the new one lacks are removed before the
        new manifest appears. A manifest.json already in `local_dir` is ignored and rewritten."""
        root = Path(local_dir)
        files = scan_dir(root)
        manifest = Manifest.build(files, metadata)
        prefix = parse_s3_uri(uri)
        base = str(S3Uri(prefix.bucket, prefix.prefix))
        manifest_uri = join_uri(base, MANIFEST_NAME)
        if self.exists(manifest_uri):
            log.info("republishing %s: withdrawing the old manifest first", base)
            self.delete(manifest_uri)
        for rel in progress(list(files), total=len(files), desc=f"publish {root.name}", unit="file"):
            self.upload_file(root / rel, join_uri(base, rel))
        new_keys = {prefix.prefix + rel for rel in files}
        stale = [o.key for o in self.list(base, recursive=True)
                 if o.key not in new_keys and o.key != prefix.prefix + MANIFEST_NAME]
        if stale:
            log.info("removing %d objects of the previous version under %s", len(stale), base)
            self._delete_keys(prefix.bucket, stale)
        self.write_bytes(manifest_uri, manifest.to_json().encode(), content_type="application/json")
        log.info("published %s (%d files, %d bytes, total %s)", base, manifest.n_files, manifest.total_size,
                 manifest.total_sha256[:12])
        return manifest

    def read_manifest(self, uri: str) -> Manifest:
        u = parse_s3_uri(uri)
        manifest_uri = str(S3Uri(u.bucket, u.prefix + MANIFEST_NAME))
        if not self.exists(manifest_uri):
            raise StorageError(f"{uri} has no {MANIFEST_NAME}: not published or incomplete; publish it with "
                               "ObjectStore.publish_dir (or wait for the producer to finish)")
        return Manifest.from_json(self.read_bytes(manifest_uri), manifest_uri)

    def is_published(self, uri: str) -> bool:
        u = parse_s3_uri(uri)
        return self.exists(str(S3Uri(u.bucket, u.prefix + MANIFEST_NAME)))

    def fetch(self, uri: str, local_dir: str | Path) -> Manifest:
        """Download a published prefix into `local_dir`, verifying every file against the manifest.

        Each file lands under a temp name and is renamed only after its hash matches; the manifest is written
        locally last, so `local_dir` is itself a verified, published directory (`verify_dir` works on it)."""
        manifest = self.read_manifest(uri)
        u = parse_s3_uri(uri)
        root = Path(local_dir)
        root.mkdir(parents=True, exist_ok=True)
        (root / MANIFEST_NAME).unlink(missing_ok=True)
        for rel, entry in progress(list(manifest.files.items()), total=manifest.n_files, desc="fetch",
                                   unit="file"):
            target = root / _check_relpath(rel)
            if target.is_file() and target.stat().st_size == entry.size:
                try:
                    verify_file(target, rel, entry, str(root))
                    continue
                except IntegrityError:
                    pass
            self._fetch_one(str(S3Uri(u.bucket, u.prefix + rel)), target, rel, entry, uri)
        atomic_write_bytes(root / MANIFEST_NAME, manifest.to_json().encode())
        return manifest

    def _fetch_one(self, obj_uri: str, target: Path, rel: str, entry: FileEntry, where: str) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix="-" + target.name, dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            try:
                self.download_file(obj_uri, tmp)
            except ObjectNotFoundError:
                raise IntegrityError(f"{where}: '{rel}' is listed in the manifest but missing from the store; "
                                     "republish the artifact") from None
            verify_file(tmp, rel, entry, where)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    # -- helpers -----------------------------------------------------------------------------------------
    def _object_uri(self, uri: str) -> S3Uri:
        u = parse_s3_uri(uri)
        if not u.key or u.key.endswith("/"):
            raise StorageError(f"'{uri}' names a prefix, not an object; add the object's key")
        return u
