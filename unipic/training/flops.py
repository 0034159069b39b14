"""FLOP accounting for MFU: counted matmul FLOPs plus analytic attention, and a measured matmul peak.

`torch.utils.flop_counter.FlopCounterMode` counts matmuls and convolutions but sees **0** FLOPs in CPU
scaled-dot-product attention (`_scaled_dot_product_flash_attention_for_cpu` has no formula registered),
so attention is added analytically: 4*B*S^2*D forward (QK^T and AV) and twice that backward, i.e.
12*B*S^2*D per attention op for a training step. SD3 joint attention runs over image (+ reference) +
text tokens; the dual-attention (MMDiT-X) `attn2` over the image-stream tokens only. The naive 6*N*T
overestimates a DiT step by 2-2.5x at small widths (adaLN and timestep MLPs act once per sample), which
is why the matmuls are counted rather than assumed (notes/feas_ml.md §2, §7).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def attention_train_flops(batch: int, image_tokens: int, text_tokens: int, width: int, num_layers: int,
                          num_dual_layers: int = 0) -> int:
    """Forward + backward FLOPs of the attention products (not the projections) in one DiT step."""
    joint = 12 * batch * (image_tokens + text_tokens) ** 2 * width * num_layers
    dual = 12 * batch * image_tokens**2 * width * num_dual_layers
    return int(joint + dual)


def counted_flops(step: Callable[[], None]) -> int:
    """FLOPs FlopCounterMode sees while running `step` once (run forward and backward inside it)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def dit_train_flops(model: torch.nn.Module, step: Callable[[], None], *, batch: int, image_tokens: int,
                    text_tokens: int) -> dict[str, int]:
    """Counted matmul FLOPs + analytic attention FLOPs of one training step of an SD3-style DiT.
    `image_tokens` includes reference tokens for editing (they join the same attention)."""
    c = model.config
    width = c.num_attention_heads * c.attention_head_dim
    counted = counted_flops(step)
    attn = attention_train_flops(batch, image_tokens, text_tokens, width, c.num_layers,
                                 len(c.dual_attention_layers or ()))
    return {"counted": counted, "attention": attn, "total": counted + attn}


def matmul_peak_flops(dtype: torch.dtype = torch.bfloat16, n: int = 2048, seconds: float = 1.0, trials: int = 3,
                      device: str | torch.device = "cpu", clock: str = "wall") -> float:
    """Best-of-`trials` square-matmul FLOP/s at `dtype`: the peak an MFU figure is measured against.

    clock="cpu" divides by this process's CPU time instead of wall time: FLOPs per CPU-second, the fairer
    peak on a CPU shared with other jobs (compare it with a step's FLOPs per CPU-second)."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    a @ b
    sync()
    timer = time.process_time if clock == "cpu" else time.perf_counter
    best = 0.0
    for _ in range(trials):
        count, start, t0 = 0, time.perf_counter(), timer()
        while time.perf_counter() - start < seconds:
            a @ b
            count += 1
        sync()
        best = max(best, 2 * n**3 * count / max(timer() - t0, 1e-9))
    return best
