"""The generator: UniPic2-SD3.5M-Kontext (an SD3 MMDiT that also reads a reference image) with its image
autoencoder, three text encoders and the flow-matching scheduler.

Presets (configs/*.yaml):
- `ci`: a ~1 M-parameter DiT at 32 px; only plumbing is asserted.
- `smoke`: the 9 M DiT that learned ShapesWorld colour/shape binding in 20 CPU minutes
  (notes/shapesworld_learnability.md §3, §7).
- `base`: the SD3.5-Medium architecture; weights come from `base_model` (a diffusers folder or s3:// URI).

Why `ci`/`smoke` use pixel-unshuffle instead of a VAE: at 32-64 px it gives the same token count as a
VAE for free and is lossless. Every reward and benchmark here is a pixel-exact ShapesWorld detector; a tiny
VAE trained for minutes on a CPU caps that detector at ~67 % (32 px) or ~5 % (64 px) on its own
reconstructions, before any diffusion error. `base` uses the real SD3.5-M AutoencoderKL.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from unipic.config.base import Section


class TransformerConfig(Section):
    """Arguments of `SD3KontextTransformer` (diffusers `SD3Transformer2DModel` + the reference embedding)."""

    sample_size: int = Field(default=16, ge=1, description="default latent side (image_size / downsample)")
    patch_size: int = Field(default=2, ge=1)
    in_channels: int = Field(default=12, ge=1, description="latent channels (pixel-unshuffle r=2: 3*2*2=12)")
    out_channels: int | None = Field(default=None, description="None = in_channels")
    num_layers: int = Field(default=2, ge=1)
    num_attention_heads: int = Field(default=4, ge=1)
    attention_head_dim: int = Field(default=32, ge=1)
    joint_attention_dim: int = Field(default=64, ge=1, description="text embedding width (= T5 d_model)")
    caption_projection_dim: int = Field(default=128, ge=1, description="must equal heads * head_dim")
    pooled_projection_dim: int = Field(default=64, ge=1, description="= CLIP-L + CLIP-G projection dims")
    pos_embed_max_size: int = Field(
        default=16, ge=1, description="largest token grid side (target or reference)"
    )
    dual_attention_layers: list[int] = Field(default_factory=list, description="MMDiT-X blocks with attn2")
    qk_norm: Literal["rms_norm"] | None = None
    use_ref_type_embed: bool = Field(
        default=True,
        description="zero-init learned embedding added to reference tokens (our addition; UniPic2 has none)",
    )

    @property
    def inner_dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    @model_validator(mode="after")
    def _check(self) -> TransformerConfig:
        if self.caption_projection_dim != self.inner_dim:
            raise ValueError(
                f"caption_projection_dim ({self.caption_projection_dim}) must equal num_attention_heads * "
                f"attention_head_dim ({self.inner_dim}): SD3 joint attention adds text and image streams"
            )
        bad = [i for i in self.dual_attention_layers if not 0 <= i < self.num_layers]
        if bad:
            raise ValueError(f"dual_attention_layers {bad} out of range for num_layers={self.num_layers}")
        if self.sample_size % self.patch_size:
            raise ValueError(
                f"sample_size ({self.sample_size}) must be a multiple of patch_size ({self.patch_size})"
            )
        if self.sample_size // self.patch_size > self.pos_embed_max_size:
            raise ValueError(
                f"sample_size/patch_size ({self.sample_size // self.patch_size}) exceeds pos_embed_max_size "
                f"({self.pos_embed_max_size}); raise pos_embed_max_size"
            )
        return self

    def diffusers_kwargs(self) -> dict:
        """Keyword arguments for `SD3KontextTransformer(**kwargs)`."""
        kw = self.model_dump()
        kw["dual_attention_layers"] = tuple(kw["dual_attention_layers"])
        kw["out_channels"] = kw["out_channels"] or kw["in_channels"]
        return kw


class AutoencoderConfig(Section):
    """The image <-> latent map. Latents fed to the DiT are `(encode(x) - shift_factor) * scaling_factor`,
    as in SD3, for both kinds."""

    kind: Literal["pixel_unshuffle", "kl"] = "pixel_unshuffle"
    factor: int = Field(
        default=2, ge=1, description="pixel_unshuffle downsampling r (latent = 3*r*r channels)"
    )
    image_channels: int = 3
    scaling_factor: float = Field(default=1.0, gt=0)
    shift_factor: float = 0.0
    latent_channels: int = Field(default=16, ge=1, description="kl only")
    block_out_channels: list[int] = Field(default_factory=lambda: [32, 32, 64, 64], description="kl only")
    layers_per_block: int = Field(default=1, ge=1, description="kl only")
    norm_num_groups: int = Field(default=16, ge=1, description="kl only")

    @property
    def downsample(self) -> int:
        return self.factor if self.kind == "pixel_unshuffle" else 2 ** (len(self.block_out_channels) - 1)

    @property
    def channels(self) -> int:
        return (
            self.image_channels * self.factor**2 if self.kind == "pixel_unshuffle" else self.latent_channels
        )


class ClipConfig(Section):
    hidden_size: int = Field(default=32, ge=8)
    num_hidden_layers: int = Field(default=2, ge=1)
    num_attention_heads: int = Field(default=2, ge=1)
    intermediate_size: int = Field(default=64, ge=1)
    projection_dim: int = Field(default=32, ge=1)


class T5Config(Section):
    d_model: int = Field(default=64, ge=8)
    num_layers: int = Field(default=2, ge=1)
    num_heads: int = Field(default=2, ge=1)
    d_kv: int = Field(default=32, ge=1)
    d_ff: int = Field(default=128, ge=1)
    relative_attention_num_buckets: int = Field(default=8, ge=1)


class TextConfig(Section):
    """Frozen text encoders in the SD3 slots (CLIP-L, CLIP-G, T5). Tokenizers are built in code."""

    clip_l: ClipConfig = Field(default_factory=ClipConfig)
    clip_g: ClipConfig = Field(default_factory=ClipConfig)
    t5: T5Config = Field(default_factory=T5Config)
    use_t5: bool = Field(
        default=True, description="False: no text_encoder_3; the T5 part of the prompt is zeros"
    )
    clip_max_length: int = Field(default=77, ge=4, description="CLIP tokens (SD3: 77)")
    t5_max_length: int = Field(default=256, ge=4, description="T5 tokens (SD3: max_sequence_length 256)")
    clip_vocab_size: int = Field(
        default=700, ge=514, description="byte vocab (514) + merges learned on captions"
    )
    t5_vocab_size: int = Field(default=200, ge=100)
    train_tokenizers: bool = Field(
        default=True, description="learn BPE merges / unigram pieces on ShapesWorld words"
    )


class ModelConfig(Section):
    base_model: str | None = Field(
        default=None,
        description="diffusers folder or s3:// URI to start from; None = random init (`models bootstrap`)",
    )
    image_size: int = Field(default=32, ge=8, description="default generated image side in pixels")
    seed: int = 0
    init: Literal["diffusers", "adaln_zero"] = Field(
        default="adaln_zero",
        description="adaln_zero zeroes block modulations and proj_out (DiT); what trained in the notes",
    )
    scheduler_shift: float = Field(
        default=3.0, gt=0, description="FlowMatchEulerDiscreteScheduler shift (SD3: 3.0)"
    )
    transformer: TransformerConfig = Field(default_factory=TransformerConfig)
    autoencoder: AutoencoderConfig = Field(default_factory=AutoencoderConfig)
    text: TextConfig = Field(default_factory=TextConfig)

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        t, ae, tx = self.transformer, self.autoencoder, self.text
        if t.in_channels != ae.channels:
            raise ValueError(
                f"transformer.in_channels ({t.in_channels}) must equal the autoencoder's latent channels "
                f"({ae.channels} for kind={ae.kind})"
            )
        step = ae.downsample * t.patch_size
        if self.image_size % step:
            raise ValueError(
                f"image_size ({self.image_size}) must be a multiple of downsample*patch ({step})"
            )
        if self.image_size // step > t.pos_embed_max_size:
            raise ValueError(
                f"image_size {self.image_size} gives a {self.image_size // step}-token grid side, over "
                f"transformer.pos_embed_max_size ({t.pos_embed_max_size})"
            )
        width = tx.clip_l.hidden_size + tx.clip_g.hidden_size
        if tx.use_t5 and tx.t5.d_model != t.joint_attention_dim:
            raise ValueError(
                f"text.t5.d_model ({tx.t5.d_model}) must equal joint_attention_dim ({t.joint_attention_dim})"
            )
        if width > t.joint_attention_dim:
            raise ValueError(
                f"CLIP-L + CLIP-G hidden sizes ({width}) exceed joint_attention_dim "
                f"({t.joint_attention_dim}); "
                "SD3 zero-pads CLIP embeddings up to the T5 width"
            )
        pooled = tx.clip_l.projection_dim + tx.clip_g.projection_dim
        if pooled != t.pooled_projection_dim:
            raise ValueError(
                f"pooled_projection_dim ({t.pooled_projection_dim}) must equal CLIP-L + CLIP-G "
                f"projection dims ({pooled})"
            )
        return self

    @property
    def latent_size(self) -> int:
        return self.image_size // self.autoencoder.downsample
