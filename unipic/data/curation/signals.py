"""Per-image quality signals, cheap enough to run on every sample (numpy on uint8 pixels).

Signals are measured at a fixed analysis scale: images are box-reduced by an integer factor until the long
side is at most `ANALYSIS_SIDE` px. That bounds the cost (a 512 px image costs what a 128 px one does) and
makes thresholds independent of resolution (a sharp edge stays sharp at any size).

- sharpness: variance of the 4-neighbour Laplacian of luminance (0 for a flat image; blur lowers it)
- colourfulness: Hasler & Suesstrunk (2003) M on the rg / yb opponent channels (0 for greyscale)
- exposure: mean luminance in [0, 1]
- clipped_fraction: share of pixels at the ends of the range (blown highlights / crushed shadows)
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

SIGNALS = ("sharpness", "colourfulness", "exposure", "clipped_fraction")
ANALYSIS_SIDE = 128
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def view_factor(size: tuple[int, ...], max_side: int = ANALYSIS_SIDE) -> int:
    """The smallest integer reduction that brings the long side of `size` to <= max_side."""
    return math.ceil(max(size[:2]) / max_side)


def analysis_view(pixels: np.ndarray, max_side: int = ANALYSIS_SIDE) -> np.ndarray:
    """The image box-reduced by the smallest integer factor that brings its long side to <= max_side."""
    factor = view_factor(pixels.shape, max_side)
    if factor <= 1:
        return pixels
    return np.asarray(Image.fromarray(pixels).reduce(factor))


def image_signals(pixels: np.ndarray) -> dict[str, float]:
    px = analysis_view(pixels)
    if px.ndim == 2:
        px = np.repeat(px[..., None], 3, axis=-1)
    return _stack_signals(px[None])[0]


def image_signals_batch(views: list[np.ndarray]) -> list[dict[str, float]]:
    """`image_signals` of each analysis view; same-size RGB(A) views are stacked and measured in one pass.

    The per-image reductions over a stacked array run the same numpy loops on the same values, so every
    signal is bit-identical to the one-image result (tests/unit/test_curation_batch.py)."""
    out: list[dict[str, float] | None] = [None] * len(views)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, v in enumerate(views):
        if v.ndim == 3 and v.shape[-1] >= 3 and max(v.shape[:2]) <= ANALYSIS_SIDE:
            groups.setdefault(v.shape, []).append(i)
        else:
            out[i] = image_signals(v)
    for idx in groups.values():
        for i, sig in zip(idx, _stack_signals(np.stack([views[i] for i in idx])), strict=True):
            out[i] = sig
    return out  # type: ignore[return-value]


def _stack_signals(views: np.ndarray) -> list[dict[str, float]]:
    """Signals of an (N, H, W, C>=3) stack of analysis views, one dict per image."""
    px = views[..., :3].astype(np.float32)
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    luma = px @ _LUMA
    lap = (luma[:, 1:-1, :-2] + luma[:, 1:-1, 2:] + luma[:, :-2, 1:-1] + luma[:, 2:, 1:-1]
           - 4.0 * luma[:, 1:-1, 1:-1])
    rg = r - g
    yb = 0.5 * (r + g) - b
    axes = (1, 2)
    rg_std, yb_std, rg_mean, yb_mean = (rg.std(axis=axes).tolist(), yb.std(axis=axes).tolist(),
                                        rg.mean(axis=axes).tolist(), yb.mean(axis=axes).tolist())
    sharp = lap.var(axis=axes).tolist() if lap[0].size else [0.0] * len(px)
    exposure = luma.mean(axis=axes).tolist()
    n_pixels = luma[0].size
    clipped = np.count_nonzero((luma <= 2.0) | (luma >= 253.0), axis=axes).tolist()
    return [{
        "sharpness": sharp[i],
        "colourfulness": math.hypot(rg_std[i], yb_std[i]) + 0.3 * math.hypot(rg_mean[i], yb_mean[i]),
        "exposure": exposure[i] / 255.0,
        "clipped_fraction": float(clipped[i]) / n_pixels,
    } for i in range(len(px))]


def change_ratio(source: np.ndarray, target: np.ndarray, pixel_delta: int) -> float:
    """Share of pixels whose largest channel difference exceeds `pixel_delta` (the edit's mask)."""
    diff = np.abs(source.astype(np.int16) - target.astype(np.int16))
    if diff.ndim == 3:
        diff = diff.max(axis=-1)
    return float(np.count_nonzero(diff > pixel_delta)) / diff.size
