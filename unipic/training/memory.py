"""Up-front memory estimate of a training step, so a config that cannot fit is refused before it starts.

Uses the model package's estimator (`unipic.models.memory`) when it offers one; otherwise a standard
analytic estimate: fp32 weights + grads + AdamW's two moments + the EMA copy (divided by the world size
as ZeRO partitions them), frozen encoders, and activations per transformer layer following Korthikanti
et al. 2022 (34*S*D + 5*H*S^2 bytes per sample and layer in 16-bit; checkpointing keeps 2*S*D per layer
plus one live layer).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from unipic.config.train import PretrainConfig, TrainerConfig


def state_bytes(n_trainable: int, cfg: TrainerConfig, world_size: int = 1) -> int:
    stage = cfg.deepspeed.zero_stage if cfg.deepspeed.enabled else 0
    w = world_size if cfg.deepspeed.enabled else 1
    weights = 4 * n_trainable / (w if stage >= 3 else 1)
    grads = 4 * n_trainable / (w if stage >= 2 else 1)
    adam = 8 * n_trainable / (w if stage >= 1 else 1)
    ema = 4 * n_trainable if cfg.ema_decay > 0 else 0
    return int(weights + grads + adam + ema)


def activation_bytes(batch: int, seq: int, width: int, heads: int, layers: int, bytes_per: int,
                     checkpointing: bool) -> int:
    per_layer_full = batch * (34 * seq * width + 5 * heads * seq * seq) * bytes_per / 2
    if checkpointing:
        return int(layers * batch * 2 * seq * width * bytes_per / 2 + per_layer_full)
    return int(layers * per_layer_full)


def estimate_pretrain_bytes(model: nn.Module, cfg: PretrainConfig, pipe: Any, world_size: int = 1) -> int:
    try:
        from unipic.models import memory as model_memory  # the model engineer's estimator, when present

        fn = getattr(model_memory, "estimate_training_bytes", None)
    except ImportError:
        fn = None
    c = model.config
    side = getattr(pipe, "default_image_size", 32) // max(1, getattr(pipe, "vae_scale_factor", 1)) // c.patch_size
    image_tokens = side * side * (2 if cfg.edit_ratio > 0 else 1)
    text_tokens = 77 + getattr(pipe, "max_sequence_length", 256)
    if fn is not None:
        try:
            return int(fn(model, batch_size=cfg.batch_size, image_tokens=image_tokens, text_tokens=text_tokens,
                          precision=cfg.precision, gradient_checkpointing=cfg.gradient_checkpointing))
        except TypeError:
            pass
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = 0
    for name in ("vae", "text_encoder", "text_encoder_2", "text_encoder_3"):
        mod = getattr(pipe, name, None)
        if isinstance(mod, nn.Module):
            frozen += sum(p.numel() * p.element_size() for p in mod.parameters())
    width = c.num_attention_heads * c.attention_head_dim
    acts = activation_bytes(cfg.batch_size, image_tokens + text_tokens, width, c.num_attention_heads, c.num_layers,
                            2 if cfg.precision == "bf16" else 4, cfg.gradient_checkpointing)
    return state_bytes(n_trainable, cfg, world_size) + frozen + acts
