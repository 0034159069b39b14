"""The MetaQuery conditioner: frozen MLLM + learnable queries + connector → the Kontext DiT's text inputs.

It stands in for SD3's three text encoders: `encode(texts, images)` returns `prompt_embeds`
(B, N, joint_attention_dim) and `pooled_prompt_embeds` (B, pooled_projection_dim), the two tensors
`SD3KontextTransformer` takes as `encoder_hidden_states` / `pooled_projections`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image
from torch import nn

from unipic.config.metaquery import ConnectorConfig, ImageRoute, MetaQueryConfig
from unipic.models.metaquery.connector import MetaQueryConnector
from unipic.models.metaquery.mllm import build_mllm, hidden_size
from unipic.models.metaquery.processor import MetaQueryProcessor
from unipic.models.metaquery.queries import query_hidden_states


def image_to_mllm(route: ImageRoute) -> bool:
    return route in ("both", "mllm")


def image_to_dit(route: ImageRoute) -> bool:
    return route in ("both", "dit")


def build_connector(
    cfg: ConnectorConfig,
    *,
    mllm_hidden_size: int,
    num_queries: int,
    joint_attention_dim: int,
    pooled_projection_dim: int,
    seed: int = 0,
) -> MetaQueryConnector:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return MetaQueryConnector(
            mllm_hidden_size=mllm_hidden_size,
            num_queries=num_queries,
            width=cfg.width,
            depth=cfg.depth,
            num_heads=cfg.num_heads,
            mlp_dim=cfg.mlp_dim,
            joint_attention_dim=joint_attention_dim,
            pooled_projection_dim=pooled_projection_dim,
            norm_eps=cfg.norm_eps,
        )


class MetaQueryConditioner(nn.Module):
    """Frozen MLLM + trainable connector (which owns the queries). Not saved as one folder: the pipeline
    saves `mllm/`, `processor/` and `connector/` separately, as diffusers does with its components."""

    def __init__(self, mllm: Any, processor: MetaQueryProcessor, connector: MetaQueryConnector) -> None:
        super().__init__()
        if connector.config.mllm_hidden_size != hidden_size(mllm):
            raise ValueError(
                f"connector expects MLLM width {connector.config.mllm_hidden_size}, "
                f"the MLLM has {hidden_size(mllm)}"
            )
        self.mllm = mllm
        self.processor = processor
        self.connector = connector

    @property
    def num_queries(self) -> int:
        return int(self.connector.config.num_queries)

    def encode(
        self,
        texts: Sequence[str],
        images: Sequence[Image.Image | None] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts (already templated) and optional images for the MLLM → (prompt_embeds, pooled)."""
        device = self.connector.queries.device
        inputs = self.processor(list(texts), images, num_queries=self.num_queries).to(device, self.mllm.dtype)
        states = query_hidden_states(self.mllm, inputs, self.connector.queries)
        return self.connector(states)

    def forward(
        self,
        texts: Sequence[str],
        images: Sequence[Image.Image | None] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode(texts, images)

    @torch.no_grad()
    def answer(
        self,
        questions: Sequence[str],
        images: Sequence[Image.Image | None] | None = None,
        *,
        max_new_tokens: int = 32,
    ) -> list[str]:
        """Image understanding: the frozen MLLM answers, exactly as plain Qwen2.5-VL would (no queries)."""
        device = next(self.mllm.parameters()).device
        inputs = self.processor(list(questions), images, num_queries=0).to(device, self.mllm.dtype)
        kwargs: dict[str, Any] = dict(
            input_ids=inputs.input_ids,
            attention_mask=inputs.attention_mask,
            mm_token_type_ids=inputs.mm_token_type_ids,
        )
        if inputs.pixel_values is not None:
            kwargs.update(pixel_values=inputs.pixel_values, image_grid_thw=inputs.image_grid_thw)
        tok = self.processor.tokenizer
        out = self.mllm.generate(
            **kwargs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )
        return [tok.decode(row, skip_special_tokens=True) for row in out[:, inputs.input_ids.shape[1] :]]


def build_conditioner(
    cfg: MetaQueryConfig, *, joint_attention_dim: int, pooled_projection_dim: int, store: Any | None = None
) -> MetaQueryConditioner:
    """A fresh conditioner: the MLLM from `cfg.mllm` (tiny or pretrained) and a new connector sized to the DiT."""
    mllm, processor = build_mllm(cfg.mllm, cfg.num_queries, store=store)
    connector = build_connector(
        cfg.connector,
        mllm_hidden_size=hidden_size(mllm),
        num_queries=cfg.num_queries,
        joint_attention_dim=joint_attention_dim,
        pooled_projection_dim=pooled_projection_dim,
        seed=cfg.mllm.seed + 1,
    )
    return MetaQueryConditioner(mllm, processor, connector)
