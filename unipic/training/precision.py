"""Which autocast dtype a run gets.

bf16 autocast pays only where the hardware multiplies bf16 natively: GPUs with bf16 support, and CPUs with AMX or
AVX512-BF16 (the Sapphire Rapids machines of notes/feas_ml.md). On an AVX2-only CPU the same autocast falls back to
emulated kernels: one smoke-preset training step took 18.6 s in bf16 against 0.5-0.7 s in fp32 on a 2-core AMD EPYC
(docs/models.md, "Precision"). `precision: auto` picks bf16 where it is native and fp32 elsewhere, so one config
runs well on both kinds of machine; an explicit `bf16` is kept but warned about.
"""

from __future__ import annotations

import torch

from unipic.logging import get_logger

log = get_logger(__name__)


def native_bf16(device: torch.device) -> bool:
    """Whether `device` runs bf16 matmuls in hardware."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    return False


def resolve_precision(requested: str, device: torch.device, key: str = "precision") -> str:
    """`auto` -> bf16 where native, else fp32; `fp32` and `bf16` stay as asked (bf16 where it is emulated warns,
    naming the config key)."""
    native = native_bf16(device)
    if requested == "auto":
        return "bf16" if native else "fp32"
    if requested == "bf16" and not native:
        log.warning("%s=bf16 on %s without native bf16 (%s): autocast runs emulated kernels, measured ~30x slower "
                    "than fp32 on an AVX2 CPU; set %s=auto or fp32", key, device.type, _capability(device), key)
    return requested


def _capability(device: torch.device) -> str:
    if device.type == "cpu":
        return f"CPU capability {torch.backends.cpu.get_cpu_capability()}, no AMX / AVX512-BF16"
    return "no bf16 support reported"
