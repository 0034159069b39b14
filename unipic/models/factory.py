"""Build every pipeline component from a `ModelConfig` (random init): the tiny presets' weights."""

from __future__ import annotations

import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from unipic.config.model import ModelConfig, TransformerConfig
from unipic.models.autoencoder import build_autoencoder
from unipic.models.kontext import SD3KontextTransformer, init_adaln_zero
from unipic.models.text_encoders import build_text_stack


def build_transformer(
    cfg: TransformerConfig, init: str = "diffusers", seed: int | None = None
) -> SD3KontextTransformer:
    """A random-init Kontext DiT. `init="adaln_zero"` zeroes modulations and the output projection (DiT)."""
    if seed is not None:
        torch.manual_seed(seed)
    model = SD3KontextTransformer(**cfg.diffusers_kwargs())
    if init == "adaln_zero":
        init_adaln_zero(model)
    return model


def build_transformer_on_meta(cfg: TransformerConfig) -> SD3KontextTransformer:
    """The architecture without memory (shape and parameter checks for the full-size presets)."""
    with torch.device("meta"):
        return SD3KontextTransformer(**cfg.diffusers_kwargs())


def build_scheduler(cfg: ModelConfig) -> FlowMatchEulerDiscreteScheduler:
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=cfg.scheduler_shift)


def build_components(cfg: ModelConfig) -> dict:
    """All nine SD3-slot components, deterministic in `cfg.seed` (each part gets its own derived seed)."""
    text = build_text_stack(cfg.text, seed=cfg.seed + 100)
    torch.manual_seed(cfg.seed + 200)
    vae = build_autoencoder(cfg.autoencoder)
    transformer = build_transformer(cfg.transformer, init=cfg.init, seed=cfg.seed)
    return dict(transformer=transformer, scheduler=build_scheduler(cfg), vae=vae, **text.as_dict())


def build_pipeline(cfg: ModelConfig):
    from unipic.pipelines.kontext import UniPicKontextPipeline

    return UniPicKontextPipeline(**build_components(cfg))


def count_parameters(module: torch.nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
