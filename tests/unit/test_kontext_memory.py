"""Memory estimator and the base (SD3.5-Medium) architecture on the meta device."""

from __future__ import annotations

import pytest

from unipic.config import load_config
from unipic.models.errors import MemoryBudgetError
from unipic.models.factory import build_transformer, build_transformer_on_meta, count_parameters
from unipic.models.memory import check_fits, count_transformer_params, estimate_training_memory


def test_base_architecture_on_meta_device():
    cfg = load_config("base").model.transformer
    model = build_transformer_on_meta(cfg)
    assert all(p.device.type == "meta" for p in model.parameters())
    n = count_parameters(model)
    assert 2.2e9 < n < 2.5e9, n
    assert len(model.transformer_blocks) == 24
    assert sum(b.attn2 is not None for b in model.transformer_blocks) == 13
    assert model.config.pos_embed_max_size == 384 and model.inner_dim == 1536


def test_meta_count_equals_real_count():
    cfg = load_config("ci").model.transformer
    assert count_transformer_params(cfg) == count_parameters(build_transformer(cfg))


def test_estimate_scales_and_refuses():
    cfg = load_config("smoke").model.transformer
    kw = dict(latent_size=16, text_tokens=64)
    small = estimate_training_memory(cfg, batch_size=8, **kw)
    big = estimate_training_memory(cfg, batch_size=64, **kw)
    edit = estimate_training_memory(cfg, batch_size=64, with_reference=True, **kw)
    ckpt = estimate_training_memory(cfg, batch_size=64, gradient_checkpointing=True, **kw)
    assert small.weights_bytes == big.weights_bytes == small.params * 4
    assert big.optimizer_bytes == 2 * 4 * small.params
    assert big.activations_bytes > 4 * small.activations_bytes
    assert edit.activations_bytes > big.activations_bytes
    assert ckpt.activations_bytes < big.activations_bytes
    check_fits(big, available_bytes=8 * 2**30)
    base = estimate_training_memory(
        load_config("base").model.transformer,
        batch_size=4,
        latent_size=64,
        text_tokens=333,
        with_reference=True,
        dtype="bf16",
    )
    assert base.total_bytes > 24 * 2**30  # notes/feas_ml.md §7: full SD3.5-M training does not fit 24 GB
    with pytest.raises(MemoryBudgetError, match=r"needs about .* GiB.*smaller preset"):
        check_fits(base, available_bytes=24 * 2**30)
    lora = estimate_training_memory(
        load_config("base").model.transformer,
        batch_size=1,
        latent_size=64,
        text_tokens=333,
        dtype="bf16",
        trainable_params=10_000_000,
    )
    assert lora.optimizer_bytes < base.optimizer_bytes / 100
    with pytest.raises(MemoryBudgetError, match="unknown dtype"):
        estimate_training_memory(cfg, batch_size=1, dtype="int3", **kw)
