"""Training data: deterministic shuffling, resumable position, T2I/edit interleaving, rank slicing."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from unipic.errors import DataError
from unipic.training.data import DatasetIndex, build_joint_batches, kind_for_step

COLORS = {"red": (220, 30, 30), "green": (30, 180, 30), "blue": (30, 30, 220), "yellow": (230, 210, 20)}


def _png(color: str, box: tuple[int, int, int, int], size: int) -> bytes:
    im = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(im).rectangle(box, fill=COLORS[color])
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_dataset(root: Path, n_t2i: int = 24, n_edit: int = 16, shard_size: int = 8, size: int = 32) -> Path:
    """A dataset in the project format (shards + index.parquet + manifest.json) of coloured squares."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "shards").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    names = list(COLORS)
    rows = []
    for kind, n in (("t2i", n_t2i), ("edit", n_edit)):
        for s0 in range(0, n, shard_size):
            shard = f"shards/{kind}-{s0 // shard_size:06d}.tar"
            with tarfile.open(root / shard, "w") as tar:
                for i in range(s0, min(n, s0 + shard_size)):
                    sid = f"{kind}-{i:06d}"
                    x, y = (int(v) for v in rng.integers(0, size // 2, 2))
                    box = (x, y, x + size // 3, y + size // 3)
                    c = names[i % 4]
                    if kind == "t2i":
                        text = f"a {c} square"
                        _add(tar, f"{sid}.png", _png(c, box, size))
                    else:
                        c2 = names[(i + 1) % 4]
                        text = f"make the {c} square {c2}"
                        _add(tar, f"{sid}.src.png", _png(c, box, size))
                        _add(tar, f"{sid}.tgt.png", _png(c2, box, size))
                    _add(tar, f"{sid}.json", json.dumps({"text": text}).encode())
                    rows.append(dict(sample_id=sid, kind=kind, task="single_object" if kind == "t2i" else "recolor",
                                     text=text, shard=shard, width=size, height=size, sha256="", split="train"))
    pd.DataFrame(rows).to_parquet(root / "index.parquet")
    from unipic.storage import write_manifest

    write_manifest(root, {"kind": "test-dataset"})
    return root


def take(batches, n):
    return [next(batches) for _ in range(n)]


def test_kind_schedule_is_even():
    assert [kind_for_step(i, 0.5) for i in range(4)] == ["t2i", "edit", "t2i", "edit"]
    assert [kind_for_step(i, 0.0) for i in range(3)] == ["t2i"] * 3
    assert [kind_for_step(i, 1.0) for i in range(3)] == ["edit"] * 3
    assert sum(kind_for_step(i, 0.25) == "edit" for i in range(100)) == 25


def test_phased_schedule_counts_edits_per_phase_and_matches_a_constant_ratio():
    phases = [(600, 0.1), (1000, 0.8)]
    kinds = [kind_for_step(i, phases) for i in range(1000)]
    assert kinds[:600].count("edit") == 60 and kinds[600:].count("edit") == 320
    assert "edit" not in kinds[:9] and kinds[600:605].count("edit") >= 3  # spread within each phase
    assert [kind_for_step(i, [(10, 0.25)]) for i in range(40)] == [kind_for_step(i, 0.25) for i in range(40)]
    assert sum(kind_for_step(i, phases) == "edit" for i in range(1000, 1100)) == 80  # the last ratio goes on


def test_edit_phases_config_resolves_to_steps_and_rejects_bad_phases():
    from pydantic import ValidationError

    from unipic.config.train import PretrainConfig

    cfg = PretrainConfig(steps=1800, edit_ratio=0.0,
                         edit_phases=[{"until": 0.6, "edit_ratio": 0.1}, {"until": 1.0, "edit_ratio": 0.8}])
    assert cfg.edit_schedule() == [(1080, 0.1), (1800, 0.8)] and cfg.trains_edits
    assert PretrainConfig(edit_ratio=0.3).edit_schedule() == 0.3
    assert not PretrainConfig(edit_ratio=0.0).trains_edits
    for bad in ([{"until": 0.5, "edit_ratio": 0.1}], [{"until": 0.7, "edit_ratio": 0}, {"until": 0.6, "edit_ratio": 1}],
                [{"until": 1.0, "edit_ratio": 1.5}]):
        with pytest.raises(ValidationError, match="edit_phases|edit_ratio"):
            PretrainConfig(edit_phases=bad)


def test_phased_batches_need_both_kinds(tmp_path):
    root = make_dataset(tmp_path / "t2i_only", n_edit=0)
    with pytest.raises(DataError, match="no edit samples"):
        build_joint_batches(root, batch_size=2, edit_ratio=[(5, 0.0), (10, 0.5)], seed=0)
    batches, _ = build_joint_batches(root, batch_size=2, edit_ratio=[(5, 0.0), (10, 0.0)], seed=0)
    assert [b.kind for b in take(batches, 3)] == ["t2i"] * 3


def test_batches_shapes_and_epoch_coverage(tmp_path):
    root = make_dataset(tmp_path / "ds")
    batches, info = build_joint_batches(root, batch_size=4, edit_ratio=0.5, seed=0)
    assert info.n_t2i == 24 and info.n_edit == 16 and info.total_sha256
    got = take(batches, 12)  # 6 t2i batches = one epoch of 24, 6 edit batches = 1.5 epochs of 16
    t2i = [b for b in got if b.kind == "t2i"]
    edit = [b for b in got if b.kind == "edit"]
    assert [b.kind for b in got[:4]] == ["t2i", "edit", "t2i", "edit"]
    assert t2i[0].images.shape == (4, 3, 32, 32) and t2i[0].images.min() >= -1 and t2i[0].images.max() <= 1
    assert edit[0].sources.shape == edit[0].targets.shape == (4, 3, 32, 32)
    assert not (edit[0].sources == edit[0].targets).all()
    seen = [i for b in t2i for i in b.ids]
    assert sorted(seen) == [f"t2i-{i:06d}" for i in range(24)]  # each sample exactly once per epoch
    assert seen != sorted(seen)  # shuffled
    assert all(t.startswith("make the") for b in edit for t in b.instructions)


def test_same_seed_same_order_other_seed_other_order(tmp_path):
    root = make_dataset(tmp_path / "ds")
    ids = lambda seed: [i for b in take(build_joint_batches(root, batch_size=4, edit_ratio=0.5, seed=seed)[0], 8)
                        for i in b.ids]
    assert ids(0) == ids(0)
    assert ids(0) != ids(1)


def test_resume_position_restores_the_stream(tmp_path):
    root = make_dataset(tmp_path / "ds")
    a, _ = build_joint_batches(root, batch_size=3, edit_ratio=0.5, seed=3)
    first = take(a, 7)
    state = json.loads(json.dumps(a.state_dict()))  # must be JSON-able
    rest = take(a, 9)
    b, _ = build_joint_batches(root, batch_size=3, edit_ratio=0.5, seed=3)
    b.load_state_dict(state)
    again = take(b, 9)
    assert [x.ids for x in rest] == [x.ids for x in again]
    assert (rest[-1].images if rest[-1].kind == "t2i" else rest[-1].targets).equal(
        again[-1].images if again[-1].kind == "t2i" else again[-1].targets)
    assert first[0].ids != rest[0].ids


def test_ranks_get_disjoint_slices_of_the_global_batch(tmp_path):
    root = make_dataset(tmp_path / "ds")
    single = take(build_joint_batches(root, batch_size=4, edit_ratio=0.0, seed=0)[0], 2)
    r0 = take(build_joint_batches(root, batch_size=2, edit_ratio=0.0, seed=0, rank=0, world_size=2)[0], 2)
    r1 = take(build_joint_batches(root, batch_size=2, edit_ratio=0.0, seed=0, rank=1, world_size=2)[0], 2)
    for s, a, b in zip(single, r0, r1):
        assert s.ids == a.ids + b.ids


def test_clear_errors(tmp_path):
    root = make_dataset(tmp_path / "ds", n_edit=0)
    with pytest.raises(DataError, match="no edit samples"):
        build_joint_batches(root, batch_size=4, edit_ratio=0.5, seed=0)
    with pytest.raises(DataError, match="fewer than one global batch"):
        build_joint_batches(root, batch_size=64, edit_ratio=0.0, seed=0)
    with pytest.raises(DataError, match="index.parquet"):
        DatasetIndex(tmp_path)
    shard = root / "shards" / "t2i-000000.tar"
    shard.write_bytes(shard.read_bytes()[:700])
    batches, _ = build_joint_batches(root, batch_size=8, edit_ratio=0.0, seed=0)
    with pytest.raises(DataError, match="t2i-00000"):
        take(batches, 3)


def _two_task_dataset(root: Path) -> Path:
    """make_dataset with half of the edit rows relabelled 'remove', so weights have two tasks to balance."""
    make_dataset(root, n_t2i=8, n_edit=32)
    df = pd.read_parquet(root / "index.parquet")
    edit = df["kind"] == "edit"
    df.loc[edit & (df["sample_id"].str[-1].astype(int) % 2 == 1), "task"] = "remove"
    df.to_parquet(root / "index.parquet")
    return root


def _epoch_ids(root: Path, weights: dict[str, float] | None, seed: int = 0) -> list[str]:
    batches, _ = build_joint_batches(root, batch_size=4, edit_ratio=1.0, seed=seed, task_weights=weights)
    stream = batches.streams["edit"]
    return [sid for sid, _, _ in stream.next_entries(len(stream))]


def test_task_weights_oversample_and_drop(tmp_path):
    root = _two_task_dataset(tmp_path / "ds")
    tasks = pd.read_parquet(root / "index.parquet").set_index("sample_id")["task"]
    plain = _epoch_ids(root, None)
    assert sorted(tasks[plain].value_counts().to_dict().items()) == [("recolor", 16), ("remove", 16)]
    tripled = _epoch_ids(root, {"recolor": 3})
    counts = tasks[tripled].value_counts().to_dict()
    assert counts == {"recolor": 48, "remove": 16}
    assert all(tripled.count(s) == 3 for s in tasks[tasks == "recolor"].index)
    dropped = _epoch_ids(root, {"remove": 0})
    assert set(tasks[dropped]) == {"recolor"} and len(dropped) == 16
    half = _epoch_ids(root, {"remove": 0.5})
    assert 0 < tasks[half].tolist().count("remove") < 16
    assert half == _epoch_ids(root, {"remove": 0.5}), "fractional weights are drawn from the seed"


def test_task_weights_reject_unknown_tasks_and_negative_weights(tmp_path):
    from unipic.config import load_config
    from unipic.errors import ConfigError

    root = _two_task_dataset(tmp_path / "ds")
    with pytest.raises(DataError, match=r"\['recolour'\].*\['recolor', 'remove', 'single_object'\]"):
        build_joint_batches(root, batch_size=4, edit_ratio=1.0, seed=0, task_weights={"recolour": 2})
    # weight 1 is the default, so a preset may name a task some datasets lack (base: {recolor: 1})
    build_joint_batches(root, batch_size=4, edit_ratio=1.0, seed=0, task_weights={"recolour": 1})
    with pytest.raises(ConfigError, match=r"pretrain\.task_weights\.recolor.*greater than or equal to 0"):
        load_config("ci", ["pretrain.task_weights={recolor: -1}"])
    with pytest.raises(ConfigError, match=r"metaquery\.train\.task_weights\.add"):
        load_config("ci", ["metaquery.train.task_weights={add: -2}"])


def test_edit_batch_size_sets_the_edit_batches_only_and_resumes(tmp_path):
    root = make_dataset(tmp_path / "ds")
    a, _ = build_joint_batches(root, batch_size=4, edit_ratio=0.5, seed=0, edit_batch_size=2)
    got = take(a, 6)
    assert [len(b) for b in got] == [4, 2, 4, 2, 4, 2]
    state = json.loads(json.dumps(a.state_dict()))
    rest = take(a, 6)
    b, _ = build_joint_batches(root, batch_size=4, edit_ratio=0.5, seed=0, edit_batch_size=2)
    b.load_state_dict(state)
    assert [x.ids for x in take(b, 6)] == [x.ids for x in rest]


def test_memory_estimate_follows_the_larger_batch_kind():
    from types import SimpleNamespace

    from unipic.config import load_config
    from unipic.models.factory import build_transformer
    from unipic.training.memory import estimate_pretrain_bytes

    cfg = load_config("ci", [])
    model = build_transformer(cfg.model.transformer)
    pipe = SimpleNamespace(default_image_size=cfg.shapes.image_size, vae_scale_factor=2)
    est = lambda **kw: estimate_pretrain_bytes(model, cfg.pretrain.model_copy(update=kw), pipe)  # noqa: E731
    b = cfg.pretrain.batch_size
    assert est(edit_ratio=0.5, edit_phases=[], edit_batch_size=b // 2) < est(edit_ratio=0.5, edit_phases=[])
    assert est(edit_ratio=0.0, edit_phases=[], edit_batch_size=b // 2) == est(edit_ratio=0.0, edit_phases=[])
    assert est(edit_ratio=0.5, edit_phases=[], edit_batch_size=4 * b) > est(edit_ratio=0.5, edit_phases=[])
