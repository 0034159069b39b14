"""The connector between the MLLM and the DiT (UniPic2's `StableDiffusion3Conditioner`, notes/unipic2.md §4).

queries (N × d_mllm, the learnable rows that enter the frozen MLLM) → MLLM hidden states at those slots →
Linear to the connector width → bidirectional pre-LN encoder without positional encoding → two heads:
per-token `prompt_embeds` at the DiT's `joint_attention_dim`, and a `pooled_prompt_embeds` vector (mean over
the tokens) at its `pooled_projection_dim`, which replaces the CLIP pooled vector in AdaLN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class ConnectorLayer(nn.Module):
    """SigLIP-style pre-LN block: LN → self-attention → +, LN → GELU(tanh) MLP → +."""

    def __init__(self, width: int, num_heads: int, mlp_dim: int, eps: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(width, eps=eps)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width, eps=eps)
        self.fc1 = nn.Linear(width, mlp_dim)
        self.fc2 = nn.Linear(mlp_dim, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.num_heads, d // self.num_heads).unbind(2)
        attn = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        x = x + self.out(attn.transpose(1, 2).reshape(b, n, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x)), approximate="tanh"))


class MetaQueryConnector(ModelMixin, ConfigMixin):
    """Learnable queries + connector. Saved as `connector/` (config.json + safetensors)."""

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        mllm_hidden_size: int = 64,
        num_queries: int = 16,
        width: int = 64,
        depth: int = 2,
        num_heads: int = 4,
        mlp_dim: int = 256,
        joint_attention_dim: int = 64,
        pooled_projection_dim: int = 64,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(num_queries, mllm_hidden_size) * 0.02)
        self.projector_in = nn.Linear(mllm_hidden_size, width)
        self.layers = nn.ModuleList(ConnectorLayer(width, num_heads, mlp_dim, norm_eps) for _ in range(depth))
        self.norm_out = nn.LayerNorm(width, eps=norm_eps)
        self.projector_tokens = nn.Linear(width, joint_attention_dim)
        self.projector_pooled = nn.Linear(width, pooled_projection_dim)
        self.gradient_checkpointing = False

    def forward(self, query_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N, d_mllm) → prompt_embeds (B, N, joint_attention_dim), pooled (B, pooled_projection_dim)."""
        x = self.projector_in(query_states.to(self.projector_in.weight.dtype))
        for layer in self.layers:
            if self.gradient_checkpointing and torch.is_grad_enabled():
                x = self._gradient_checkpointing_func(layer, x)
            else:
                x = layer(x)
        x = self.norm_out(x)
        return self.projector_tokens(x), self.projector_pooled(x.mean(dim=1))
