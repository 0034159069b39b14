"""Up-front memory estimates for training the Kontext DiT: an impossible config is refused before allocating.

Parameters are counted exactly by building the architecture on the meta device (no memory). Training state is
weights + gradients (at the parameter dtype) + AdamW's two moments (fp32), plus an fp32 master copy when the
weights are kept in 16 bit. Activations are an estimate for the joint sequence (target + reference + text
tokens): per transformer block about `34 * B * S * D` bytes in 16-bit with memory-efficient attention (no S^2
term; Korthikanti et al. 2022), more for MMDiT-X blocks with their second attention; with gradient
checkpointing only the block inputs are kept plus one block's activations. Treat it as +-30 %: it is for
refusing configs that are off by multiples, not for packing memory to the last byte.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from unipic.config.model import TransformerConfig
from unipic.models.errors import MemoryBudgetError

DTYPE_BYTES = {"float32": 4, "fp32": 4, "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2}


def _bytes_per(dtype: str) -> int:
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise MemoryBudgetError(f"unknown dtype '{dtype}'; use one of {sorted(DTYPE_BYTES)}") from None


@dataclass(frozen=True)
class MemoryEstimate:
    params: int
    weights_bytes: int
    grads_bytes: int
    optimizer_bytes: int
    activations_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.grads_bytes + self.optimizer_bytes + self.activations_bytes

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "total_bytes": self.total_bytes}

    def describe(self) -> str:
        gib = lambda b: f"{b / 2**30:.2f} GiB"  # noqa: E731
        return (
            f"{self.params / 1e6:.1f} M params: weights {gib(self.weights_bytes)}, "
            f"grads {gib(self.grads_bytes)}, "
            f"optimizer {gib(self.optimizer_bytes)}, activations ~{gib(self.activations_bytes)}, "
            f"total ~{gib(self.total_bytes)}"
        )


def count_transformer_params(cfg: TransformerConfig) -> int:
    """Exact parameter count of the Kontext DiT, built on the meta device (instant, no memory)."""
    from unipic.models.factory import build_transformer_on_meta

    model = build_transformer_on_meta(cfg)
    return sum(p.numel() for p in model.parameters())


def estimate_training_memory(
    cfg: TransformerConfig,
    *,
    batch_size: int,
    latent_size: int | tuple[int, int],
    text_tokens: int,
    with_reference: bool = False,
    dtype: str = "float32",
    optimizer: str = "adamw",
    gradient_checkpointing: bool = False,
    trainable_params: int | None = None,
    zero_shards: int = 1,
) -> MemoryEstimate:
    """Memory to train `cfg` at one micro-batch. `trainable_params` < params for LoRA; `zero_shards` divides
    gradients and optimizer states (DeepSpeed ZeRO-2 across that many ranks)."""
    params = count_transformer_params(cfg)
    trainable = params if trainable_params is None else trainable_params
    w = _bytes_per(dtype)
    weights = params * w
    grads = trainable * w // zero_shards
    moments = {"adamw": 2, "adam": 2, "sgd": 0, "sgd_momentum": 1}.get(optimizer)
    if moments is None:
        raise MemoryBudgetError(f"unknown optimizer '{optimizer}'; use adamw, adam, sgd or sgd_momentum")
    master = trainable * 4 if w < 4 else 0
    opt = (trainable * 4 * moments + master) // zero_shards
    h, wd = (latent_size, latent_size) if isinstance(latent_size, int) else latent_size
    img_tokens = (h // cfg.patch_size) * (wd // cfg.patch_size)
    seq = img_tokens * (2 if with_reference else 1) + text_tokens
    d = cfg.inner_dim
    per_token_16bit = 34
    act_dtype_scale = w / 2
    block = batch_size * seq * d * per_token_16bit * act_dtype_scale
    n_dual = len(cfg.dual_attention_layers)
    n = cfg.num_layers
    if gradient_checkpointing:
        acts = batch_size * seq * d * w * n + block * (1.5 if n_dual else 1)
    else:
        acts = block * n + block * 0.5 * n_dual
    return MemoryEstimate(params, int(weights), int(grads), int(opt), int(acts))


def available_memory_bytes(device: str | torch.device = "cpu") -> int:
    """Free memory on `device` (GPU: free device memory; CPU: MemAvailable)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    raise MemoryBudgetError("cannot determine available memory; pass available_bytes explicitly")


def check_fits(
    estimate: MemoryEstimate,
    available_bytes: int | None = None,
    headroom: float = 0.9,
    what: str = "this training config",
) -> None:
    """Raise `MemoryBudgetError` when `estimate` exceeds `headroom` x available memory, naming the fixes."""
    available = available_memory_bytes() if available_bytes is None else available_bytes
    budget = int(available * headroom)
    if estimate.total_bytes > budget:
        raise MemoryBudgetError(
            f"{what} needs about {estimate.total_bytes / 2**30:.1f} GiB ({estimate.describe()}) but only "
            f"{budget / 2**30:.1f} GiB is usable ({headroom:.0%} of {available / 2**30:.1f} GiB available). "
            "Use a smaller preset (ci/smoke), a smaller batch, bf16, gradient checkpointing, LoRA, or ZeRO "
            "sharding "
            "across more devices."
        )
