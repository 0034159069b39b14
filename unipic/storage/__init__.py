"""The storage layer: one object-store client, s3:// URIs, content hashes and atomic publish with manifests.

    store = ObjectStore(cfg.store)
    store.publish_dir("out/dataset", "s3://unipic-data/shapes/v1", metadata=lineage)   # manifest last
    local = materialize("s3://unipic-data/shapes/v1", cfg.store)                       # verified, cached
"""

from unipic.storage.client import ObjectStore, StoredObject
from unipic.storage.errors import BucketNotFoundError, ObjectNotFoundError
from unipic.storage.hashing import sha256_bytes, sha256_file, total_hash
from unipic.storage.manifest import (
    MANIFEST_NAME,
    FileEntry,
    Manifest,
    read_local_manifest,
    verify_dir,
    write_manifest,
)
from unipic.storage.materialize import materialize
from unipic.storage.uri import S3Uri, is_s3_uri, join_uri, parse_s3_uri

__all__ = [
    "MANIFEST_NAME",
    "BucketNotFoundError",
    "FileEntry",
    "Manifest",
    "ObjectNotFoundError",
    "ObjectStore",
    "S3Uri",
    "StoredObject",
    "is_s3_uri",
    "join_uri",
    "materialize",
    "parse_s3_uri",
    "read_local_manifest",
    "sha256_bytes",
    "sha256_file",
    "total_hash",
    "verify_dir",
    "write_manifest",
]
