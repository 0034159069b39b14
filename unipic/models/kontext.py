"""SD3KontextTransformer: the SD3/SD3.5 MMDiT that also reads a clean reference image (UniPic2 Kontext)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from diffusers import SD3Transformer2DModel
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_outputs import Transformer2DModelOutput

from unipic.models.errors import ModelInputError


class SD3KontextTransformer(SD3Transformer2DModel):
    """SD3 MMDiT with in-context image conditioning by sequence concatenation.

    The reference latent goes through the *same* `pos_embed` (patchify conv + centre-cropped 2-D sin-cos
    table) as the noisy target, its tokens are appended after the target tokens in the image stream, every
    block runs on the joint sequence (joint attention with text; `attn2` of the MMDiT-X blocks too), and the
    reference tokens are sliced off before `norm_out`/`proj_out`, so the output has the target's shape only.
    Reference tokens share the global `temb` (the target's timestep + pooled text), as in UniPic2 and FLUX
    Kontext.

    Difference from the official UniPic2 code (`transformer_sd3_kontext.py`): UniPic2 adds no parameter, so
    reference and target tokens at the same (row, col) carry identical embeddings except for content. We add
    `ref_type_embed`, one learned vector added to every reference token, **initialised to zero**: at init (and
    after converting an SD3/UniPic2 checkpoint) the model computes exactly what UniPic2 computes, and training
    can learn a "this is the reference" signal. `use_ref_type_embed=False` drops it for exact parameter
    parity. Token order ([target; ref] here, [ref; target] in UniPic2) does not matter: attention is
    permutation-equivariant and positions are added before the blocks.

    Reference size: the reference may have a different latent size from the target as long as each side of its
    token grid is <= `pos_embed_max_size` (it is centre-cropped from the same table); otherwise a
    `ModelInputError` names the sizes and the limit. The pipeline resizes a reference image to the output
    size, as UniPic2 does.

    Without a reference the forward is the base `SD3Transformer2DModel.forward`, bit for bit.
    """

    @register_to_config
    def __init__(
        self,
        sample_size: int = 128,
        patch_size: int = 2,
        in_channels: int = 16,
        num_layers: int = 18,
        attention_head_dim: int = 64,
        num_attention_heads: int = 18,
        joint_attention_dim: int = 4096,
        caption_projection_dim: int = 1152,
        pooled_projection_dim: int = 2048,
        out_channels: int = 16,
        pos_embed_max_size: int = 96,
        dual_attention_layers: tuple[int, ...] = (),
        qk_norm: str | None = None,
        use_ref_type_embed: bool = True,
    ):
        super().__init__(
            sample_size=sample_size,
            patch_size=patch_size,
            in_channels=in_channels,
            num_layers=num_layers,
            attention_head_dim=attention_head_dim,
            num_attention_heads=num_attention_heads,
            joint_attention_dim=joint_attention_dim,
            caption_projection_dim=caption_projection_dim,
            pooled_projection_dim=pooled_projection_dim,
            out_channels=out_channels,
            pos_embed_max_size=pos_embed_max_size,
            dual_attention_layers=dual_attention_layers,
            qk_norm=qk_norm,
        )
        self.ref_type_embed = nn.Parameter(torch.zeros(1, 1, self.inner_dim)) if use_ref_type_embed else None

    def _check_grid(self, latents: torch.Tensor, what: str) -> None:
        p, limit = self.config.patch_size, self.config.pos_embed_max_size
        h, w = latents.shape[-2:]
        if latents.ndim != 4 or latents.shape[1] != self.config.in_channels:
            raise ModelInputError(
                f"{what} must be (batch, {self.config.in_channels}, h, w) latents, got {tuple(latents.shape)}"
            )
        if h % p or w % p:
            raise ModelInputError(f"{what} latent size {h}x{w} is not a multiple of patch_size {p}")
        if h // p > limit or w // p > limit:
            raise ModelInputError(
                f"{what} latent size {h}x{w} gives a {h // p}x{w // p} token grid, over "
                f"pos_embed_max_size={limit}; use an image at most {limit * p} latent pixels per side or a "
                "model with a larger pos_embed_max_size"
            )

    def embed_reference(self, ref_latents: torch.Tensor) -> torch.Tensor:
        """Reference latent -> tokens: the target's patch embedding and positions, plus the type embedding."""
        tokens = self.pos_embed(ref_latents).contiguous()
        if self.ref_type_embed is not None:
            tokens = tokens + self.ref_type_embed.to(tokens.dtype)
        return tokens

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor = None,
        pooled_projections: torch.Tensor = None,
        timestep: torch.LongTensor = None,
        block_controlnet_hidden_states: list | None = None,
        joint_attention_kwargs: dict[str, Any] | None = None,
        return_dict: bool = True,
        skip_layers: list[int] | None = None,
        ref_latents: torch.Tensor | None = None,
    ) -> torch.Tensor | Transformer2DModelOutput:
        """SD3 forward; `ref_latents` (batch, C, h', w') adds a clean reference image read in context."""
        if ref_latents is None:
            return super().forward(
                hidden_states,
                encoder_hidden_states=encoder_hidden_states,
                pooled_projections=pooled_projections,
                timestep=timestep,
                block_controlnet_hidden_states=block_controlnet_hidden_states,
                joint_attention_kwargs=joint_attention_kwargs,
                return_dict=return_dict,
                skip_layers=skip_layers,
            )
        if block_controlnet_hidden_states is not None:
            raise ModelInputError("ControlNet residuals are not supported together with ref_latents")
        self._check_grid(hidden_states, "target")
        self._check_grid(ref_latents, "reference")
        if ref_latents.shape[0] != hidden_states.shape[0]:
            raise ModelInputError(
                f"reference batch ({ref_latents.shape[0]}) must equal target batch ({hidden_states.shape[0]})"
            )

        height, width = hidden_states.shape[-2:]
        x = self.pos_embed(hidden_states).contiguous()
        n_target = x.shape[1]
        x = torch.cat([x, self.embed_reference(ref_latents.to(x.dtype))], dim=1)
        temb = self.time_text_embed(timestep, pooled_projections)
        ctx = self.context_embedder(encoder_hidden_states)
        if joint_attention_kwargs is not None and "ip_adapter_image_embeds" in joint_attention_kwargs:
            raise ModelInputError("IP-Adapter image embeds are not supported together with ref_latents")

        for index, block in enumerate(self.transformer_blocks):
            if skip_layers is not None and index in skip_layers:
                continue
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                ctx, x = self._gradient_checkpointing_func(block, x, ctx, temb, joint_attention_kwargs)
            else:
                ctx, x = block(
                    hidden_states=x,
                    encoder_hidden_states=ctx,
                    temb=temb,
                    joint_attention_kwargs=joint_attention_kwargs,
                )

        x = self.proj_out(self.norm_out(x[:, :n_target], temb))
        p = self.config.patch_size
        x = x.reshape(x.shape[0], height // p, width // p, p, p, self.out_channels)
        x = torch.einsum("nhwpqc->nchpwq", x)
        out = x.reshape(x.shape[0], self.out_channels, height, width)
        return Transformer2DModelOutput(sample=out) if return_dict else (out,)


def init_adaln_zero(model: SD3Transformer2DModel) -> None:
    """DiT's adaLN-Zero init: every block starts as the identity and the output as zero.

    This is what trained in notes/shapesworld_learnability.md §3; diffusers' default init is for loading
    weights.
    """
    with torch.no_grad():
        for block in model.transformer_blocks:
            for norm in (block.norm1, block.norm1_context):
                linear = getattr(norm, "linear", None)
                if linear is not None:
                    nn.init.zeros_(linear.weight)
                    nn.init.zeros_(linear.bias)
        nn.init.zeros_(model.norm_out.linear.weight)
        nn.init.zeros_(model.norm_out.linear.bias)
        nn.init.zeros_(model.proj_out.weight)
        nn.init.zeros_(model.proj_out.bias)
