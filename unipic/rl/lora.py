"""LoRA through peft on the DiT (diffusers' PeftAdapterMixin), and merging it back for export.

With LoRA the reference policy of the KL term is the same module with adapters disabled, so no second copy of
the weights is kept. The exported model is a plain transformer with the LoRA deltas merged in: the next stage
and the server load it like any other checkpoint.
"""

from __future__ import annotations

import torch
from torch import nn

from unipic.config.rl import LoRAConfig
from unipic.errors import ConfigError


def add_lora(transformer: nn.Module, cfg: LoRAConfig, adapter_name: str = "grpo") -> list[str]:
    """Freeze the base weights and add trainable LoRA adapters (B = 0 at init, so the policy starts equal to
    the reference). Returns the adapted module names."""
    from peft import LoraConfig

    names = [n for n, _ in transformer.named_modules() if any(n == t or n.endswith("." + t) for t in cfg.target_modules)]
    if not names:
        raise ConfigError(
            f"rl.grpo.lora.target_modules={cfg.target_modules} match no module of {type(transformer).__name__}; "
            "use names such as attn.to_q, attn.to_k, attn.to_v, attn.to_out.0"
        )
    transformer.requires_grad_(False)
    transformer.add_adapter(LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                                       target_modules=list(cfg.target_modules), init_lora_weights=True),
                            adapter_name=adapter_name)
    for n, p in transformer.named_parameters():
        p.requires_grad_("lora_" in n)
    return names


@torch.no_grad()
def merge_lora(transformer: nn.Module) -> nn.Module:
    """Fold the LoRA deltas into the base weights and remove the adapters, in place."""
    if not getattr(transformer, "_hf_peft_config_loaded", False):
        return transformer
    transformer.fuse_lora(lora_scale=1.0)
    transformer.unload_lora()
    transformer.requires_grad_(True)
    return transformer
