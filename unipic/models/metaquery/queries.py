"""Run the frozen MLLM with N learnable query embeddings in the last N slots and read their hidden states.

UniPic2 writes `meta_queries` over placeholder ids rather than adding vocabulary (notes/unipic2.md §4):
the result is the same as training N new embedding rows while every original row stays frozen, and it
works unchanged with the real Qwen2.5-VL-7B tokenizer.
"""

from __future__ import annotations

from typing import Any

import torch

from unipic.models.metaquery.processor import MetaQueryInputs


def build_input_embeds(mllm: Any, inputs: MetaQueryInputs, queries: torch.Tensor) -> torch.Tensor:
    """Token embeddings with image features and query vectors scattered into their slots."""
    core = mllm.model
    embeds = core.get_input_embeddings()(inputs.input_ids)
    if inputs.pixel_values is not None:
        feats = core.get_image_features(
            inputs.pixel_values.to(core.visual.dtype), inputs.image_grid_thw, return_dict=True
        ).pooler_output
        feats = torch.cat(feats, dim=0).to(embeds.dtype)
        image_mask = (inputs.input_ids == mllm.config.image_token_id).unsqueeze(-1)
        if int(image_mask.sum()) != feats.shape[0]:
            raise ValueError(f"{int(image_mask.sum())} image slots but {feats.shape[0]} image features")
        embeds = embeds.masked_scatter(image_mask.expand_as(embeds), feats)
    batch, n = inputs.input_ids.shape[0], queries.shape[0]
    q = queries.to(embeds.dtype).unsqueeze(0).expand(batch, n, -1)
    return embeds.masked_scatter(inputs.query_mask.unsqueeze(-1).expand_as(embeds), q)


def position_ids(mllm: Any, inputs: MetaQueryInputs) -> torch.Tensor:
    """3-D mRoPE positions (3, B, L), computed from ids because the model only sees `inputs_embeds`."""
    pos, _ = mllm.model.get_rope_index(
        inputs.input_ids,
        mm_token_type_ids=inputs.mm_token_type_ids,
        image_grid_thw=inputs.image_grid_thw,
        attention_mask=inputs.attention_mask,
    )
    return pos


def query_hidden_states(mllm: Any, inputs: MetaQueryInputs, queries: torch.Tensor) -> torch.Tensor:
    """Last-layer hidden states at the query slots, (B, N, hidden). Gradients flow to `queries` only."""
    embeds = build_input_embeds(mllm, inputs, queries)
    out = mllm.model.language_model(
        inputs_embeds=embeds,
        attention_mask=inputs.attention_mask,
        position_ids=position_ids(mllm, inputs),
        use_cache=False,
    )
    hidden = out.last_hidden_state
    return hidden[inputs.query_mask].view(hidden.shape[0], queries.shape[0], hidden.shape[-1])
