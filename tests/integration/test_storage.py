"""ObjectStore against a real SeaweedFS on loopback: round trips, listing, atomic publish, verified fetch,
the content-addressed cache, and the errors users see when the store is wrong or away."""

import json
import os

import pytest

from unipic.errors import IntegrityError, StorageError
from unipic.services.ports import find_free_http_ports
from unipic.storage import (
    MANIFEST_NAME,
    BucketNotFoundError,
    ObjectNotFoundError,
    ObjectStore,
    join_uri,
    materialize,
    sha256_bytes,
    verify_dir,
)

pytestmark = pytest.mark.integration

FILES = {"index.parquet": b"PAR1" * 100, "shards/t2i-000000.tar": b"\x01" * 5000, "shards/edit-000000.tar": b"e",
         "empty.txt": b"", "sub dir/n\u00e4me \u00fc.json": "{\"caption\": \"\u00e4\"}".encode()}


def _tree(root, files=FILES):
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def test_bytes_roundtrip_and_exists(store, s3_prefix):
    uri = join_uri(s3_prefix, "a/b.bin")
    data = bytes(range(256)) * 40
    assert not store.exists(uri)
    store.write_bytes(uri, data)
    assert store.exists(uri)
    assert store.read_bytes(uri) == data
    assert store.size(uri) == len(data)
    store.delete(uri)
    assert not store.exists(uri)


def test_file_roundtrip(store, s3_prefix, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(1 << 20) * 12)  # above the 5 MiB part size: a multipart upload
    uri = join_uri(s3_prefix, "big.bin")
    store.upload_file(src, uri)
    out = store.download_file(uri, tmp_path / "out" / "big.bin")
    assert out.read_bytes() == src.read_bytes()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".tmp-")]


def test_dir_roundtrip_and_listing(store, s3_prefix, tmp_path):
    _tree(tmp_path / "src")
    written = store.upload_dir(tmp_path / "src", s3_prefix)
    assert len(written) == len(FILES)
    keys = {o.key[len(s3_prefix.split("/", 3)[3]):] for o in store.list(s3_prefix)}
    assert keys == set(FILES)
    top = store.list(s3_prefix, recursive=False)
    assert {(o.key.rsplit("/", 2)[-2] if o.is_dir else o.key.rsplit("/", 1)[-1]) for o in top} == {
        "index.parquet", "shards", "empty.txt", "sub dir"}
    assert [o.is_dir for o in top if o.key.endswith("shards/")] == [True]
    assert store.exists(s3_prefix) and not store.exists(join_uri(s3_prefix, "nothing/"))
    store.download_dir(s3_prefix, tmp_path / "dst")
    for rel, data in FILES.items():
        assert (tmp_path / "dst" / rel).read_bytes() == data
    assert store.delete_prefix(s3_prefix) == len(FILES)
    assert store.list(s3_prefix) == []


def test_missing_object_and_bucket_errors(store, s3_prefix, tmp_path):
    with pytest.raises(ObjectNotFoundError, match="no such object"):
        store.read_bytes(join_uri(s3_prefix, "missing.txt"))
    with pytest.raises(ObjectNotFoundError):
        store.download_file(join_uri(s3_prefix, "missing.txt"), tmp_path / "m.txt")
    assert not (tmp_path / "m.txt").exists()
    with pytest.raises(BucketNotFoundError, match="bucket 'no-such-bucket-xyz' does not exist"):
        store.read_bytes("s3://no-such-bucket-xyz/a")
    with pytest.raises(StorageError, match="names a prefix"):
        store.read_bytes(s3_prefix)


def test_ensure_bucket_is_idempotent(store):
    name = "unipic-test-ensure"
    first = store.ensure_bucket(name)
    assert store.ensure_bucket(name) is False
    assert name in store.list_buckets()
    assert first in (True, False)


def test_publish_writes_manifest_last_and_fetch_verifies(store, s3_prefix, tmp_path):
    _tree(tmp_path / "src")
    assert not store.is_published(s3_prefix)
    m = store.publish_dir(tmp_path / "src", s3_prefix, metadata={"stage": "test", "counts": {"t2i": 1}})
    assert store.is_published(s3_prefix)
    remote = store.read_manifest(s3_prefix)
    assert remote.total_sha256 == m.total_sha256 and remote.metadata["counts"] == {"t2i": 1}
    assert {k: v.sha256 for k, v in remote.files.items()} == {k: sha256_bytes(v) for k, v in FILES.items()}
    got = store.fetch(s3_prefix, tmp_path / "dst")
    assert got.total_sha256 == m.total_sha256
    assert verify_dir(tmp_path / "dst").total_sha256 == m.total_sha256
    for rel, data in FILES.items():
        assert (tmp_path / "dst" / rel).read_bytes() == data


def test_manifest_is_uploaded_after_every_file(store, s3_prefix, tmp_path, monkeypatch):
    _tree(tmp_path / "src")
    order = []
    real_upload, real_write = store.upload_file, store.write_bytes
    monkeypatch.setattr(store, "upload_file", lambda p, u: (order.append(u), real_upload(p, u)))
    monkeypatch.setattr(store, "write_bytes", lambda u, d, **kw: (order.append(u), real_write(u, d, **kw)))
    store.publish_dir(tmp_path / "src", s3_prefix)
    assert order[-1] == join_uri(s3_prefix, MANIFEST_NAME)
    assert len(order) == len(FILES) + 1


def test_prefix_without_manifest_is_not_published(store, s3_prefix, tmp_path):
    _tree(tmp_path / "src")
    store.upload_dir(tmp_path / "src", s3_prefix)
    assert not store.is_published(s3_prefix)
    with pytest.raises(StorageError, match="not published or incomplete"):
        store.fetch(s3_prefix, tmp_path / "dst")
    with pytest.raises(StorageError, match="not published or incomplete"):
        materialize(s3_prefix, store.cfg, tmp_path / "cache")


def test_tampered_object_fails_verification_naming_the_file(store, s3_prefix, tmp_path):
    _tree(tmp_path / "src")
    store.publish_dir(tmp_path / "src", s3_prefix)
    store.write_bytes(join_uri(s3_prefix, "shards/edit-000000.tar"), b"E")  # same size, other bytes
    with pytest.raises(IntegrityError, match="'shards/edit-000000.tar' has sha256"):
        store.fetch(s3_prefix, tmp_path / "dst")
    assert not (tmp_path / "dst" / "shards/edit-000000.tar").exists()
    assert not (tmp_path / "dst" / MANIFEST_NAME).exists()
    store.delete(join_uri(s3_prefix, "index.parquet"))
    with pytest.raises(IntegrityError, match="'index.parquet' is listed in the manifest but missing"):
        store.fetch(s3_prefix, tmp_path / "dst2")


def test_republish_replaces_content_and_withdraws_manifest_while_uploading(store, s3_prefix, tmp_path,
                                                                         monkeypatch):
    _tree(tmp_path / "v1")
    store.publish_dir(tmp_path / "v1", s3_prefix, metadata={"v": 1})
    v2 = {"index.parquet": b"PAR1-v2", "new.txt": b"new"}
    _tree(tmp_path / "v2", v2)
    seen_published = []
    real_upload = store.upload_file

    def spy(path, uri):
        seen_published.append(store.is_published(s3_prefix))
        return real_upload(path, uri)

    monkeypatch.setattr(store, "upload_file", spy)
    store.publish_dir(tmp_path / "v2", s3_prefix, metadata={"v": 2})
    assert seen_published == [False, False]
    m = store.read_manifest(s3_prefix)
    assert m.metadata == {"v": 2} and set(m.files) == set(v2)
    names = {o.key.rsplit("/", 1)[-1] for o in store.list(s3_prefix)}
    assert names == {"index.parquet", "new.txt", MANIFEST_NAME}
    store.fetch(s3_prefix, tmp_path / "dst")
    assert (tmp_path / "dst" / "new.txt").read_bytes() == b"new"


def test_materialize_caches_by_content(store, s3_prefix, tmp_path, monkeypatch):
    _tree(tmp_path / "src")
    m1 = store.publish_dir(tmp_path / "src", s3_prefix)
    cache = tmp_path / "cache"
    p1 = materialize(s3_prefix, store.cfg, cache)
    assert p1.name == m1.total_sha256 and verify_dir(p1).total_sha256 == m1.total_sha256
    calls = []
    real_fetch = ObjectStore.fetch
    monkeypatch.setattr(ObjectStore, "fetch", lambda self, *a, **k: (calls.append(a), real_fetch(self, *a, **k))[1])
    assert materialize(s3_prefix, store.cfg, cache) == p1
    assert calls == []
    (tmp_path / "src" / "index.parquet").write_bytes(b"changed")
    m2 = store.publish_dir(tmp_path / "src", s3_prefix)
    p2 = materialize(s3_prefix, store.cfg, cache)
    assert p2 != p1 and p2.name == m2.total_sha256 and len(calls) == 1
    assert (p2 / "index.parquet").read_bytes() == b"changed"
    (p2 / "index.parquet").write_bytes(b"trunc")  # a damaged cache entry is fetched again
    assert (materialize(s3_prefix, store.cfg, cache) / "index.parquet").read_bytes() == b"changed"
    assert not [p for p in (cache / "sha256").iterdir() if p.name.startswith(".tmp-")]


def test_wrong_credentials_name_the_access_key_not_the_secret(store_config):
    bad = store_config.model_copy(update={"access_key": store_config.access_key,
                                          "secret_key": type(store_config.secret_key)("wrong-secret-123")})
    with pytest.raises(StorageError) as exc:
        ObjectStore(bad).read_bytes(f"s3://{store_config.buckets.data}/x")
    msg = str(exc.value)
    assert "refused the credentials" in msg and store_config.access_key.get_secret_value() in msg
    assert "wrong-secret-123" not in msg and store_config.secret_key.get_secret_value() not in msg
    unknown = store_config.model_copy(update={"access_key": type(store_config.access_key)("nobody-here")})
    with pytest.raises(StorageError, match="access key 'nobody-here'"):
        ObjectStore(unknown).list_buckets()


def test_unreachable_endpoint_is_a_clear_error(store_config):
    (port,) = find_free_http_ports(1)
    cfg = store_config.model_copy(update={"endpoint": f"127.0.0.1:{port}", "retries": 1, "timeout_s": 2.0})
    with pytest.raises(StorageError) as exc:
        ObjectStore(cfg).read_bytes("s3://unipic-data/x")
    msg = str(exc.value)
    assert f"object store at 127.0.0.1:{port} is not reachable" in msg
    assert "unipic services up" in msg and "store.endpoint" in msg


def test_manifest_json_is_plain_json(store, s3_prefix, tmp_path):
    _tree(tmp_path / "src", {"a": b"1"})
    store.publish_dir(tmp_path / "src", s3_prefix)
    raw = json.loads(store.read_bytes(join_uri(s3_prefix, MANIFEST_NAME)))
    assert set(raw) >= {"format", "created_at", "files", "total_sha256", "total_size", "n_files", "metadata"}


def test_json_roundtrip(store, s3_prefix):
    uri = join_uri(s3_prefix, "metrics.json")
    store.write_json(uri, {"loss": 0.5, "steps": [1, 2]})
    assert store.read_json(uri) == {"loss": 0.5, "steps": [1, 2]}
    store.write_bytes(uri, b"{broken")
    with pytest.raises(StorageError, match="not valid JSON"):
        store.read_json(uri)


def test_fetch_reuses_verified_local_files(store, s3_prefix, tmp_path, monkeypatch):
    _tree(tmp_path / "src")
    store.publish_dir(tmp_path / "src", s3_prefix)
    store.fetch(s3_prefix, tmp_path / "dst")
    (tmp_path / "dst" / "index.parquet").write_bytes(b"PAR2" * 100)  # damaged locally: fetched again
    downloads = []
    real = store.download_file
    monkeypatch.setattr(store, "download_file", lambda u, p: (downloads.append(u), real(u, p))[1])
    store.fetch(s3_prefix, tmp_path / "dst")
    assert downloads == [join_uri(s3_prefix, "index.parquet")]
    assert verify_dir(tmp_path / "dst").n_files == len(FILES)


def test_empty_directory_publishes_an_empty_manifest(store, s3_prefix, tmp_path):
    (tmp_path / "empty").mkdir()
    m = store.publish_dir(tmp_path / "empty", s3_prefix, metadata={"why": "nothing passed the filters"})
    assert m.n_files == 0 and store.is_published(s3_prefix)
    assert store.fetch(s3_prefix, tmp_path / "dst").total_sha256 == m.total_sha256
