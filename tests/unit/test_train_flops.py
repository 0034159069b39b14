"""FLOP accounting: analytic attention, counted matmuls (and the CPU SDPA blind spot it compensates)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unipic.training.flops import attention_train_flops, counted_flops


def test_attention_formula():
    # one joint layer: 12 * B * S^2 * D with S = image + text tokens; dual layers add image-only attention
    assert attention_train_flops(2, 64, 16, 128, 1) == 12 * 2 * 80**2 * 128
    assert attention_train_flops(2, 64, 16, 128, 2, 1) == 2 * 12 * 2 * 80**2 * 128 + 12 * 2 * 64**2 * 128


def test_counter_sees_matmuls_but_not_cpu_sdpa():
    a = torch.randn(8, 16, requires_grad=True)
    w = torch.randn(16, 4)
    # forward a@w plus the gradient for a (w needs none): two matmuls of 2*8*16*4
    assert counted_flops(lambda: (a @ w).sum().backward()) == 2 * 2 * 8 * 16 * 4
    q = torch.randn(1, 2, 32, 8)
    counted = counted_flops(lambda: F.scaled_dot_product_attention(q, q, q))
    assert counted == 0  # why attention is added analytically (notes/feas_ml.md §2)
