"""`s3://bucket/key` URIs: the one way artifacts are named, locally (SeaweedFS) and in a cluster (MinIO)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from unipic.errors import StorageError

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str = ""

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def prefix(self) -> str:
        """The key as a 'directory' prefix: '' or ending with '/'."""
        return self.key if not self.key or self.key.endswith("/") else self.key + "/"

    def child(self, *parts: str) -> "S3Uri":
        return parse_s3_uri(join_uri(str(self), *parts))


def is_s3_uri(value: str | Path) -> bool:
    return isinstance(value, str) and value.startswith("s3://")


def parse_s3_uri(uri: str) -> S3Uri:
    """Split `s3://bucket/some/key` into bucket and key, rejecting what S3 would reject later and less clearly."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise StorageError(f"'{uri}' is not an s3:// URI; expected s3://BUCKET/KEY")
    rest = uri[len("s3://"):]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StorageError(f"'{uri}' has no bucket; expected s3://BUCKET/KEY")
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise StorageError(
            f"'{bucket}' in '{uri}' is not a valid bucket name: use 3-63 lowercase letters, digits, '-' or '.'"
        )
    parts = key.split("/")
    if any(p in (".", "..") for p in parts):
        raise StorageError(f"'{uri}': '.' and '..' are not allowed in object keys")
    if "//" in key.rstrip("/"):
        raise StorageError(f"'{uri}': empty path segment ('//') in the key")
    return S3Uri(bucket=bucket, key=key)


def join_uri(base: str, *parts: str) -> str:
    """Join key parts onto an s3:// URI with exactly one '/' between them (like `Path /`, for keys)."""
    root = parse_s3_uri(base)
    segments = [root.key.strip("/")] if root.key.strip("/") else []
    for part in parts:
        part = str(part).replace("\\", "/").strip("/")
        if part:
            segments.append(part)
    trailing = "/" if parts and str(parts[-1]).endswith("/") else ""
    return str(parse_s3_uri(f"s3://{root.bucket}/{'/'.join(segments)}{trailing}"))
