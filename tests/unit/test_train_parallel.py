"""Parallelism plumbing that needs no second process: the process-count check and the DeepSpeed config."""

from __future__ import annotations

import pytest
import torch.distributed as dist

from unipic.config.train import DeepSpeedConfig, TrainerConfig
from unipic.errors import ConfigError, UniPicError
from unipic.training.parallel import deepspeed_config, init_parallel


def test_plain_is_a_single_process():
    ctx = init_parallel(DeepSpeedConfig(enabled=False))
    assert (ctx.rank, ctx.world_size, ctx.distributed, ctx.is_main) == (0, 1, False, True)


def test_plain_refuses_world_size_above_one(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(ConfigError, match="WORLD_SIZE=4 but deepspeed.enabled is false"):
        init_parallel(DeepSpeedConfig(enabled=False))


def test_process_count_mismatch_is_caught(monkeypatch):
    """The silent single-process trap: the launcher says 2, the process group has 1."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 1)
    monkeypatch.setattr(dist, "get_backend", lambda: "gloo")
    with pytest.raises(UniPicError, match="WORLD_SIZE=2 but torch.distributed has 1"):
        init_parallel(DeepSpeedConfig(enabled=True))


def test_bad_world_size_env(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match="WORLD_SIZE"):
        init_parallel(DeepSpeedConfig(enabled=False))


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_deepspeed_config_follows_the_trainer_config(stage):
    cfg = TrainerConfig(batch_size=6, grad_clip=0.5, deepspeed=DeepSpeedConfig(enabled=True, zero_stage=stage))
    ds = deepspeed_config(cfg, world_size=2)
    assert ds["train_micro_batch_size_per_gpu"] == 6 and ds["train_batch_size"] == 12
    assert ds["gradient_clipping"] == 0.5 and ds["zero_optimization"]["stage"] == stage
    assert "bf16" not in ds  # bf16 comes from torch.autocast in both backends
    assert ("stage3_gather_16bit_weights_on_model_save" in ds["zero_optimization"]) == (stage == 3)


def test_config_rejects_bad_values_naming_the_key():
    from unipic.config import load_config

    with pytest.raises(ConfigError, match="pretrain.deepspeed.zero_stage"):
        load_config("ci", ["pretrain.deepspeed.zero_stage=4"])
    with pytest.raises(ConfigError, match="pretrain.precision"):
        load_config("ci", ["pretrain.precision=fp16"])
    with pytest.raises(ConfigError, match="betas"):
        load_config("ci", ["pretrain.betas=[0.9, 1.5]"])
    with pytest.raises(ConfigError, match="pretrain.edit_ratio"):
        load_config("ci", ["pretrain.edit_ratio=1.5"])


def test_mpi_launcher_variables_are_adopted(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"):
        monkeypatch.setenv(k, "x")  # recorded, so the variables the code sets are removed again afterwards
        monkeypatch.delenv(k)
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "3")
    with pytest.raises(ConfigError, match="MASTER_ADDR"):
        init_parallel(DeepSpeedConfig(enabled=False))
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")
    with pytest.raises(ConfigError, match="WORLD_SIZE=4"):  # plain mode must refuse 4 processes
        init_parallel(DeepSpeedConfig(enabled=False))
    import os

    assert os.environ["RANK"] == "3"
