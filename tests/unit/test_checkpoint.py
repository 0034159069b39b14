"""CheckpointManager: atomic layout, integrity checks, pruning, interrupted saves, process-count guard."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from unipic.errors import IntegrityError, UniPicError
from unipic.training.checkpoint import META, CheckpointManager, verify_checkpoint
from unipic.training.optim import build_lr_scheduler, build_optimizer
from unipic.training.parallel import ParallelContext, PlainEngine
from unipic.config.train import TrainerConfig


def engine(seed: int = 0) -> PlainEngine:
    torch.manual_seed(seed)
    model = nn.Linear(4, 3)
    cfg = TrainerConfig(steps=10)
    opt = build_optimizer(model, cfg)
    return PlainEngine(model, opt, build_lr_scheduler(opt, cfg), cfg.grad_clip)


def step_once(e: PlainEngine) -> None:
    e.module(torch.randn(2, 4)).pow(2).mean().backward()
    e.step()


def test_save_writes_hashes_and_load_restores_everything(tmp_path):
    e = engine()
    step_once(e)
    mgr = CheckpointManager(tmp_path, keep_last=2, ctx=ParallelContext())
    path = mgr.save(1, e, {"step": 1, "data": {"n": 7}}, {"ema": {"w": torch.ones(3)}}, {"note": "x"})
    meta = json.loads((path / META).read_text())
    assert set(meta["files"]) == {"model.safetensors", "optimizer.pt", "trainer_state.rank0.pt", "ema.safetensors"}
    assert all(len(r["sha256"]) == 64 and r["size"] > 0 for r in meta["files"].values())
    assert meta["step"] == 1 and meta["metadata"] == {"note": "x"}

    fresh = engine(seed=1)
    state, tensors = mgr.load(path, fresh)
    assert state == {"step": 1, "data": {"n": 7}}
    assert torch.equal(tensors["ema"]["w"], torch.ones(3))
    assert torch.equal(fresh.module.weight, e.module.weight)
    assert fresh.optimizer.state_dict()["state"][0]["step"] == e.optimizer.state_dict()["state"][0]["step"]
    assert fresh.scheduler.last_epoch == e.scheduler.last_epoch == 1


def test_interrupted_save_is_invisible_and_cleaned_up(tmp_path):
    e = engine()
    mgr = CheckpointManager(tmp_path, keep_last=2, ctx=ParallelContext())
    mgr.save(1, e, {"step": 1})
    half = tmp_path / ".tmp-step-00000002"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"partial")
    no_meta = tmp_path / "step-00000003"  # a directory without checkpoint.json is not a checkpoint
    no_meta.mkdir()
    assert mgr.latest().name == "step-00000001"
    CheckpointManager(tmp_path, keep_last=2, ctx=ParallelContext())
    assert not half.exists()
    with pytest.raises(IntegrityError, match="not a complete checkpoint"):
        verify_checkpoint(no_meta)


def test_keep_last_prunes_the_oldest(tmp_path):
    e = engine()
    mgr = CheckpointManager(tmp_path, keep_last=2, ctx=ParallelContext())
    for s in (1, 2, 3, 4):
        mgr.save(s, e, {"step": s})
    assert [p.name for p in mgr.complete()] == ["step-00000003", "step-00000004"]


@pytest.mark.parametrize("damage", ["flip", "delete", "truncate_meta"])
def test_damage_is_detected_and_nothing_is_loaded(tmp_path, damage):
    e = engine()
    step_once(e)
    mgr = CheckpointManager(tmp_path, keep_last=2, ctx=ParallelContext())
    path = mgr.save(1, e, {"step": 1})
    if damage == "flip":
        f = path / "optimizer.pt"
        blob = bytearray(f.read_bytes())
        blob[len(blob) // 2] ^= 0x01
        f.write_bytes(bytes(blob))
        match = "optimizer.pt is corrupt"
    elif damage == "delete":
        (path / "model.safetensors").unlink()
        match = "model.safetensors is missing"
    else:
        (path / META).write_text("{")
        match = "not valid JSON"
    fresh = engine(seed=1)
    before = fresh.module.weight.detach().clone()
    with pytest.raises(IntegrityError, match=match):
        mgr.load(path, fresh)
    assert torch.equal(fresh.module.weight, before)


def test_resuming_with_another_process_count_is_refused(tmp_path):
    e = engine()
    path = CheckpointManager(tmp_path, keep_last=1, ctx=ParallelContext()).save(1, e, {"step": 1})
    meta = json.loads((path / META).read_text())
    meta["world_size"] = 2
    (path / META).write_text(json.dumps(meta))
    with pytest.raises(UniPicError, match="written by 2 process"):
        CheckpointManager(tmp_path, keep_last=1, ctx=ParallelContext()).load(path, engine())
