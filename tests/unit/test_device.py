import pytest
import torch

from unipic.config import load_config
from unipic.device import resolve_device
from unipic.errors import ConfigError


def test_cpu_and_auto_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")


def test_cuda_requested_without_a_gpu_fails_up_front(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"rl\.edit\.device=cuda but this process sees no CUDA device"):
        resolve_device("cuda", key="rl.edit.device")


def test_auto_takes_the_local_rank_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert resolve_device("auto") == torch.device("cuda", 2)
    assert resolve_device("cuda", local_rank=5) == torch.device("cuda", 1)


def test_unknown_device_is_a_config_error():
    with pytest.raises(ConfigError, match="'gpu' is not a device"):
        resolve_device("gpu")


def test_every_stage_has_a_device_knob():
    cfg = load_config("ci", ["pretrain.device=cpu", "rl.edit.device=cpu", "metaquery.train.device=cpu",
                             "evaluation.generation.device=cpu"])
    assert {cfg.pretrain.device, cfg.rl.edit.device, cfg.metaquery.train.device,
            cfg.evaluation.generation.device} == {"cpu"}
    with pytest.raises(Exception, match="auto"):
        load_config("ci", ["pretrain.device=gpu"])
