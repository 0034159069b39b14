"""Up-front memory estimate of a pre-training step, so a config that cannot fit is refused before it starts.

The transformer's part (weights, grads, AdamW moments, activations of the joint sequence) comes from the
model package's estimator, `unipic.models.memory.estimate_training_memory`; this adds what the trainer
holds besides: the fp32 EMA copy and the frozen text encoders and autoencoder.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from unipic.config.train import PretrainConfig


def transformer_config(model: nn.Module):
    from unipic.config.model import TransformerConfig

    fields = set(TransformerConfig.model_fields)
    raw = {k: v for k, v in dict(model.config).items() if k in fields}
    if "dual_attention_layers" in raw:
        raw["dual_attention_layers"] = list(raw["dual_attention_layers"] or [])
    return TransformerConfig.model_validate(raw)


def available_bytes(device: torch.device) -> int:
    from unipic.models.memory import available_memory_bytes

    return available_memory_bytes(device)


def estimate_pretrain_bytes(model: nn.Module, cfg: PretrainConfig, pipe: Any, world_size: int = 1) -> int:
    from unipic.models.memory import estimate_training_memory

    tcfg = transformer_config(model)
    latent = getattr(pipe, "default_image_size", 32) // max(1, getattr(pipe, "vae_scale_factor", 1))
    clip_len = getattr(getattr(pipe, "tokenizer", None), "model_max_length", 77) or 77
    text_tokens = min(int(clip_len), 4096) + int(getattr(pipe, "max_sequence_length", 256))
    zero = world_size if cfg.deepspeed.enabled and cfg.deepspeed.zero_stage >= 2 else 1
    kinds = [(cfg.batch_size, False)]
    if cfg.trains_edits:
        kinds.append((cfg.edit_batch_size or cfg.batch_size, True))
    # The peak is that of the larger batch kind: T2I and edit batches are never in memory together.
    est = max((estimate_training_memory(
        tcfg, batch_size=batch, latent_size=latent, text_tokens=text_tokens,
        with_reference=ref, dtype="float32", gradient_checkpointing=cfg.gradient_checkpointing,
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad), zero_shards=zero,
    ) for batch, ref in kinds), key=lambda e: e.activations_bytes)
    # Under bf16 autocast the saved activations are a mix of bf16 matmul outputs and fp32 norm/residual
    # tensors; measured peaks (benchmarks/results/pretrain_memory.md) match the fp32 figure better than half.
    est_acts = est.activations_bytes
    ema = 4 * sum(p.numel() for p in model.parameters() if p.requires_grad) if cfg.ema_decay > 0 else 0
    frozen = 0
    for name in ("vae", "text_encoder", "text_encoder_2", "text_encoder_3"):
        mod = getattr(pipe, name, None)
        if isinstance(mod, nn.Module):
            frozen += sum(p.numel() * p.element_size() for p in mod.parameters())
    return est.weights_bytes + est.grads_bytes + est.optimizer_bytes + est_acts + ema + frozen
