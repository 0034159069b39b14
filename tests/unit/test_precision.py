"""precision: auto picks bf16 only where the device multiplies bf16 natively; emulated bf16 warns."""

from __future__ import annotations

import logging

import pytest
import torch

from unipic.config.train import TrainerConfig
from unipic.training import precision as prec


@pytest.fixture
def cpu_with(monkeypatch):
    def set_caps(amx: bool, avx512_bf16: bool) -> None:
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    return set_caps


@pytest.mark.parametrize("amx,avx512_bf16,expected", [(True, False, "bf16"), (False, True, "bf16"),
                                                       (False, False, "fp32")])
def test_auto_follows_the_cpu(cpu_with, amx, avx512_bf16, expected):
    cpu_with(amx, avx512_bf16)
    assert prec.resolve_precision("auto", torch.device("cpu")) == expected


def test_explicit_choices_are_kept_and_emulated_bf16_warns(cpu_with, caplog):
    cpu_with(False, False)
    with caplog.at_level(logging.WARNING):
        assert prec.resolve_precision("bf16", torch.device("cpu"), "pretrain.precision") == "bf16"
    assert "pretrain.precision=bf16" in caplog.text and "emulated" in caplog.text
    caplog.clear()
    cpu_with(True, False)
    with caplog.at_level(logging.WARNING):
        assert prec.resolve_precision("bf16", torch.device("cpu")) == "bf16"
        assert prec.resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert not caplog.text


def test_config_default_is_auto_and_rejects_unknown():
    assert TrainerConfig().precision == "auto"
    with pytest.raises(ValueError, match="precision"):
        TrainerConfig(precision="fp16")
