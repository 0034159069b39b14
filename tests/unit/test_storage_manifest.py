"""Manifests: per-file sha256 + size, a stable total hash, written last, verified on read."""

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unipic.errors import IntegrityError, StorageError
from unipic.lineage import Lineage
from unipic.storage import MANIFEST_NAME, Manifest, read_local_manifest, sha256_bytes, sha256_file, total_hash
from unipic.storage import verify_dir, write_manifest


def _tree(root, files: dict[str, bytes]):
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def test_sha256_file_matches_bytes(tmp_path):
    data = bytes(range(256)) * 5000  # > 1 MiB chunk
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    assert sha256_file(p) == sha256_bytes(data) == hashlib.sha256(data).hexdigest()


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.text("abc/", min_size=1, max_size=6), st.text("0123456789abcdef", min_size=64,
                                                                         max_size=64), min_size=1, max_size=8))
def test_total_hash_ignores_order(entries):
    items = list(entries.items())
    assert total_hash(items) == total_hash(reversed(items))


def test_total_hash_sees_path_and_content_changes():
    a = [("x.txt", "0" * 64), ("y.txt", "1" * 64)]
    assert total_hash(a) != total_hash([("x.txt", "0" * 64), ("y.txt", "2" * 64)])
    assert total_hash(a) != total_hash([("x2.txt", "0" * 64), ("y.txt", "1" * 64)])
    # swapping contents between paths is a different tree
    assert total_hash(a) != total_hash([("x.txt", "1" * 64), ("y.txt", "0" * 64)])
    # no ambiguity from concatenation ("a" + "bc" vs "ab" + "c")
    assert total_hash([("a", "b" * 64)]) != total_hash([("ab", "b" * 64)])


def test_write_manifest_lists_every_file(tmp_path):
    files = {"a.txt": b"alpha", "sub/b.bin": b"\x00\x01", "sub/deeper/c": b""}
    _tree(tmp_path, files)
    lineage = Lineage(stage="test", config_hash="abc123", git_commit="deadbeef")
    m = write_manifest(tmp_path, lineage)
    assert set(m.files) == set(files)
    for rel, data in files.items():
        assert m.files[rel].sha256 == sha256_bytes(data)
        assert m.files[rel].size == len(data)
    assert m.n_files == 3 and m.total_size == 7
    assert m.total_sha256 == total_hash((k, sha256_bytes(v)) for k, v in files.items())
    assert m.metadata["stage"] == "test" and m.metadata["git_commit"] == "deadbeef"
    on_disk = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert on_disk["total_sha256"] == m.total_sha256 and "created_at" in on_disk
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_manifest_excludes_itself_and_is_stable(tmp_path):
    _tree(tmp_path, {"a": b"1"})
    first = write_manifest(tmp_path, {"k": 1})
    second = write_manifest(tmp_path, {"k": 1})
    assert MANIFEST_NAME not in second.files
    assert first.total_sha256 == second.total_sha256


def test_verify_dir_passes_on_untouched(tmp_path):
    _tree(tmp_path, {"a": b"1", "d/b": b"22"})
    write_manifest(tmp_path)
    assert verify_dir(tmp_path).n_files == 2


def test_verify_dir_names_tampered_file(tmp_path):
    _tree(tmp_path, {"a": b"1", "d/b": b"22"})
    write_manifest(tmp_path)
    (tmp_path / "d/b").write_bytes(b"XX")  # same size, different content
    with pytest.raises(IntegrityError, match="'d/b' has sha256"):
        verify_dir(tmp_path)


def test_verify_dir_names_truncated_and_missing_files(tmp_path):
    _tree(tmp_path, {"a": b"1", "d/b": b"22"})
    write_manifest(tmp_path)
    (tmp_path / "d/b").write_bytes(b"2")
    with pytest.raises(IntegrityError, match="'d/b' has 1 bytes"):
        verify_dir(tmp_path)
    (tmp_path / "d/b").unlink()
    with pytest.raises(IntegrityError, match="'d/b' is listed in the manifest but missing"):
        verify_dir(tmp_path)


def test_no_manifest_means_not_published(tmp_path):
    _tree(tmp_path, {"a": b"1"})
    with pytest.raises(StorageError, match="not published or incomplete"):
        verify_dir(tmp_path)


def test_edited_manifest_is_detected(tmp_path):
    _tree(tmp_path, {"a": b"1"})
    write_manifest(tmp_path)
    data = json.loads((tmp_path / MANIFEST_NAME).read_text())
    data["files"]["a"]["sha256"] = "0" * 64
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(IntegrityError, match="total_sha256 does not match"):
        read_local_manifest(tmp_path)


def test_garbage_manifest_is_a_clear_error(tmp_path):
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(StorageError, match="manifest is not valid"):
        read_local_manifest(tmp_path)


def test_unsafe_paths_in_manifest_are_refused(tmp_path):
    m = Manifest.build({"../escape": {"sha256": "0" * 64, "size": 0}})
    (tmp_path / MANIFEST_NAME).write_text(m.to_json())
    with pytest.raises(StorageError, match="unsafe path"):
        verify_dir(tmp_path)


def test_metadata_must_be_dict_or_model():
    with pytest.raises(TypeError):
        Manifest.build({}, metadata=["not", "a", "dict"])
