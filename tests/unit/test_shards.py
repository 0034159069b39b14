"""The dataset format: WebDataset tar shards, parquet index, manifest last; corrupt shards fail by name."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest

from unipic.config.data import ShapesConfig
from unipic.data.generate import generate_dataset
from unipic.data.shapes import render, score_edit, score_t2i
from unipic.data.shards import INDEX_COLUMNS, ShardWriter, iter_dataset, iter_shard, read_index, split_key
from unipic.errors import DataError
from unipic.storage import sha256_bytes, verify_dir

CFG = ShapesConfig(image_size=32, n_t2i=30, n_edit=14, shard_size=8)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "shapes"
    manifest = generate_dataset(CFG, out, kind="both")
    return out, manifest


def test_layout_index_and_manifest(dataset):
    root, manifest = dataset
    names = sorted(p.name for p in (root / "shards").iterdir())
    assert names == [f"edit-{i:06d}.tar" for i in range(2)] + [f"t2i-{i:06d}.tar" for i in range(4)]
    assert not list(root.rglob("*.tmp"))
    assert verify_dir(root).total_sha256 == manifest.total_sha256
    assert set(manifest.files) == {"index.parquet", "report.md", "preview.png", *(f"shards/{n}" for n in names)}
    report = (root / "report.md").read_text()
    assert "| t2i | counting | train | 5 |" in report and "blue square" in report
    meta = manifest.metadata
    assert meta["n_samples"] == 44 and meta["split"] == "train" and meta["format"] == "unipic-dataset/1"
    assert sum(v for k, v in meta["counts"].items() if k.startswith("t2i/")) == 30
    assert meta["lineage"]["stage"] == "data.generate" and len(meta["lineage"]["config_hash"]) == 16
    idx = read_index(root)
    assert list(idx.columns) == list(INDEX_COLUMNS)
    assert len(idx) == 44 and idx["sample_id"].is_unique
    assert set(idx["kind"]) == {"t2i", "edit"} and set(idx["split"]) == {"train"}
    assert (idx["width"] == 32).all() and (idx["height"] == 32).all()


def test_records_round_trip_and_match_the_index(dataset):
    root, _ = dataset
    idx = read_index(root).set_index("sample_id")
    t2i = list(iter_dataset(root, kind="t2i"))
    edits = list(iter_dataset(root, kind="edit"))
    assert len(t2i) == 30 and len(edits) == 14
    for rec in t2i:
        meta = rec.json()
        row = idx.loc[rec.key]
        assert sorted(rec.files) == ["json", "png"]
        assert sha256_bytes(rec.files["png"]) == row["sha256"] and row["shard"] == rec.shard
        assert meta["caption"] == row["text"] and meta["task"] == row["task"]
    images = [r.image() for r in t2i]
    specs = [r.json()["spec"] for r in t2i]
    assert all(s.correct for s in score_t2i(images, specs))
    src = [r.image("src.png") for r in edits]
    tgt = [r.image("tgt.png") for r in edits]
    assert all(s.success for s in score_edit(src, tgt, [r.json()["spec"] for r in edits]))
    assert all(sorted(r.files) == ["json", "src.png", "tgt.png"] for r in edits)


def test_generation_is_deterministic_and_prefix_stable(dataset, tmp_path):
    root, manifest = dataset
    again = generate_dataset(CFG, tmp_path / "again", kind="both")
    assert again.total_sha256 == manifest.total_sha256
    bigger = generate_dataset(CFG.model_copy(update={"n_t2i": 50, "shard_size": 7}), tmp_path / "big", kind="t2i")
    assert bigger.metadata["n_samples"] == 50
    small = {r.key: r.files["png"] for r in iter_dataset(root, kind="t2i")}
    big = {r.key: r.files["png"] for r in iter_dataset(tmp_path / "big")}
    assert all(big[k] == v for k, v in small.items())


def test_existing_output_needs_overwrite(dataset, tmp_path):
    out = tmp_path / "ds"
    generate_dataset(CFG.model_copy(update={"n_edit": 3}), out, kind="edit")
    with pytest.raises(DataError, match="--overwrite"):
        generate_dataset(CFG, out, kind="edit")
    m = generate_dataset(CFG.model_copy(update={"n_edit": 5}), out, kind="edit", overwrite=True)
    assert m.metadata["n_samples"] == 5 and len(read_index(out)) == 5


def test_heldout_dataset(tmp_path):
    m = generate_dataset(CFG.model_copy(update={"heldout": True, "n_t2i": 12}), tmp_path / "h", kind="t2i")
    assert m.metadata["split"] == "heldout"
    assert set(read_index(tmp_path / "h")["split"]) == {"heldout"}
    assert all(r.key.startswith("t2i-heldout-") for r in iter_dataset(tmp_path / "h", split="heldout"))


def test_unknown_kind_and_empty_generation(tmp_path):
    with pytest.raises(DataError, match="unknown dataset kind 'pairs'"):
        generate_dataset(CFG, tmp_path / "x", kind="pairs")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="nothing to generate"):
        generate_dataset(CFG.model_copy(update={"n_t2i": 0}), tmp_path / "y", kind="t2i")
    assert not (tmp_path / "y").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_truncated_shard_names_the_shard(dataset, tmp_path):
    root, _ = dataset
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    shard = copy / "shards" / "t2i-000001.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2 + 100])
    with pytest.raises(DataError, match="t2i-000001.tar"):
        list(iter_dataset(copy))


def test_shard_cut_at_a_member_boundary_is_caught_by_the_index(dataset, tmp_path):
    root, _ = dataset
    import shutil

    copy = tmp_path / "copy2"
    shutil.copytree(root, copy)
    shard = copy / "shards" / "edit-000000.tar"
    with tarfile.open(shard) as tar:
        members = tar.getmembers()
    keep = members[3]  # the first three members are one sample (json, src.png, tgt.png)
    shard.write_bytes(shard.read_bytes()[: keep.offset])
    with pytest.raises(DataError, match="edit-000000.tar"):
        list(iter_dataset(copy, kind="edit"))


def test_garbage_shard_raises_data_error(tmp_path):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"this is not a tar file" * 40)
    with pytest.raises(DataError, match="bad.tar"):
        list(iter_shard(bad))


def test_writer_groups_members_by_key_and_is_byte_stable(tmp_path):
    def write(d):
        with ShardWriter(d, "t2i", 2) as w:
            for i in range(3):
                w.write(f"s{i}", {"png": bytes([i]) * 10, "json": json.dumps({"i": i}).encode()})
        return w.shards

    assert write(tmp_path / "a") == ["t2i-000000.tar", "t2i-000001.tar"]
    write(tmp_path / "b")
    assert (tmp_path / "a" / "t2i-000000.tar").read_bytes() == (tmp_path / "b" / "t2i-000000.tar").read_bytes()
    recs = list(iter_shard(tmp_path / "a" / "t2i-000000.tar"))
    assert [r.key for r in recs] == ["s0", "s1"] and recs[1].json() == {"i": 1}
    with pytest.raises(DataError, match="invalid sample key"):
        ShardWriter(tmp_path / "c", "t2i", 2).write("a.b", {"png": b""})


def test_writer_leaves_no_shard_on_error(tmp_path):
    with pytest.raises(RuntimeError), ShardWriter(tmp_path, "edit", 10) as w:
        w.write("k0", {"json": b"{}"})
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_split_key_and_missing_members():
    assert split_key("shards/edit-train-00000001.src.png") == ("edit-train-00000001", "src.png")
    with pytest.raises(DataError):
        split_key("noext")


def test_not_a_dataset(tmp_path):
    with pytest.raises(DataError, match="not a dataset"):
        list(iter_dataset(tmp_path, check_counts=False))
    with pytest.raises(DataError, match="index.parquet"):
        read_index(tmp_path)


def test_rendered_png_matches_scene(dataset):
    root, _ = dataset
    rec = next(iter_dataset(root, kind="t2i"))
    from unipic.data.shapes import Scene

    scene = Scene.model_validate(rec.json()["scene"])
    assert np.array_equal(rec.image(), render(scene))


def test_read_shard_members(dataset):
    from unipic.data.shards import read_shard_members

    root, _ = dataset
    members = read_shard_members(root / "shards" / "edit-000000.tar")
    assert len(members) == 8 and all(set(v) == {"json", "src.png", "tgt.png"} for v in members.values())


def test_verify_hashes_catches_a_changed_image(dataset, tmp_path):
    import shutil

    root, _ = dataset
    copy = tmp_path / "copy3"
    shutil.copytree(root, copy)
    assert len(list(iter_dataset(copy, verify_hashes=True))) == 44
    shard = copy / "shards" / "t2i-000002.tar"
    with tarfile.open(shard) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".png"))
    data = bytearray(shard.read_bytes())
    data[member.offset_data + 40] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert len(list(iter_dataset(copy, kind="t2i"))) == 30
    with pytest.raises(DataError, match=f"{member.name.split('.')[0]}.*t2i-000002.tar.*corrupt"):
        list(iter_dataset(copy, kind="t2i", verify_hashes=True))
