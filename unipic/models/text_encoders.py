"""The three SD3 text-encoder slots (CLIP-L, CLIP-G, T5) built from config, and SD3's prompt encoding.

`encode_prompt` reproduces diffusers' `StableDiffusion3Pipeline.encode_prompt` (tested against it):
CLIP penultimate hidden states of both CLIPs concatenated on the feature axis, zero-padded to the T5 width,
then concatenated with the T5 states along the sequence; pooled = concat of the two CLIP `text_embeds`.
No attention masks are passed, as in SD3. The encoders are frozen everywhere in this project.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5Config, T5EncoderModel

from unipic.config.model import ClipConfig, TextConfig
from unipic.config.model import T5Config as T5Section
from unipic.models.tokenizers import make_clip_tokenizer, make_t5_tokenizer, shapes_corpus


@dataclass
class TextStack:
    """The six text components in their SD3 slot names. `text_encoder_3`/`tokenizer_3` may be None."""

    text_encoder: CLIPTextModelWithProjection
    tokenizer: object
    text_encoder_2: CLIPTextModelWithProjection
    tokenizer_2: object
    text_encoder_3: T5EncoderModel | None
    tokenizer_3: object | None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def build_clip(cfg: ClipConfig, tokenizer, max_length: int) -> CLIPTextModelWithProjection:
    """A random CLIP text tower; eos_token_id must match the tokenizer: the pooled output is read there."""
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        projection_dim=cfg.projection_dim,
        max_position_embeddings=max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModelWithProjection(config).eval().requires_grad_(False)


def build_t5(cfg: T5Section, tokenizer) -> T5EncoderModel:
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=cfg.d_model,
        d_ff=cfg.d_ff,
        d_kv=cfg.d_kv,
        num_layers=cfg.num_layers,
        num_heads=cfg.num_heads,
        relative_attention_num_buckets=cfg.relative_attention_num_buckets,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    return T5EncoderModel(config).eval().requires_grad_(False)


def build_text_stack(cfg: TextConfig, seed: int = 0) -> TextStack:
    """Tokenizers (trained on ShapesWorld words if configured) and random frozen encoders, seeded."""
    corpus = shapes_corpus() if cfg.train_tokenizers else None
    tok = make_clip_tokenizer(corpus, cfg.clip_vocab_size, cfg.clip_max_length)
    tok_2 = make_clip_tokenizer(corpus, cfg.clip_vocab_size, cfg.clip_max_length)
    torch.manual_seed(seed)
    enc = build_clip(cfg.clip_l, tok, cfg.clip_max_length)
    torch.manual_seed(seed + 1)
    enc_2 = build_clip(cfg.clip_g, tok_2, cfg.clip_max_length)
    tok_3 = enc_3 = None
    if cfg.use_t5:
        tok_3 = make_t5_tokenizer(corpus, cfg.t5_vocab_size, cfg.t5_max_length)
        torch.manual_seed(seed + 2)
        enc_3 = build_t5(cfg.t5, tok_3)
    return TextStack(enc, tok, enc_2, tok_2, enc_3, tok_3)


def _clip_embeds(encoder, tokenizer, prompts: list[str], device) -> tuple[torch.Tensor, torch.Tensor]:
    ids = tokenizer(
        prompts,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids.to(device)
    out = encoder(ids, output_hidden_states=True)
    return out.hidden_states[-2], out[0]


def encode_prompt(
    components: dict,
    prompts: list[str],
    max_sequence_length: int = 256,
    joint_attention_dim: int | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SD3 prompt encoding -> (embeds [B, L_clip + L_t5, joint_dim], pooled [B, pooled_dim]).

    `components` holds the SD3 slot names (text_encoder, tokenizer, ..._2, ..._3). Without a T5 encoder the T5
    part is zeros of width `joint_attention_dim`, as in SD3.
    """
    enc, enc_2, enc_3 = (
        components["text_encoder"],
        components["text_encoder_2"],
        components.get("text_encoder_3"),
    )
    dtype = dtype or enc.dtype
    embeds_1, pooled_1 = _clip_embeds(enc, components["tokenizer"], prompts, device)
    embeds_2, pooled_2 = _clip_embeds(enc_2, components["tokenizer_2"], prompts, device)
    clip = torch.cat([embeds_1, embeds_2], dim=-1)
    if enc_3 is not None:
        tok_3 = components["tokenizer_3"]
        ids = tok_3(
            prompts,
            padding="max_length",
            max_length=max_sequence_length,
            truncation=True,
            add_special_tokens=True,
            return_tensors="pt",
        ).input_ids.to(device)
        t5 = enc_3(ids)[0]
    else:
        if joint_attention_dim is None:
            raise ValueError("joint_attention_dim is needed to build zero T5 embeddings without a T5 encoder")
        t5 = torch.zeros(len(prompts), max_sequence_length, joint_attention_dim, device=device)
    clip = torch.nn.functional.pad(clip, (0, t5.shape[-1] - clip.shape[-1]))
    embeds = torch.cat([clip.to(dtype), t5.to(dtype)], dim=-2)
    pooled = torch.cat([pooled_1, pooled_2], dim=-1).to(dtype)
    return embeds, pooled
