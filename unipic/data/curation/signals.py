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


def analysis_view(pixels: np.ndarray, max_side: int = ANALYSIS_SIDE) -> np.ndarray:
    """The image box-reduced by the smallest integer factor that brings its long side to <= max_side."""
    factor = math.ceil(max(pixels.shape[:2]) / max_side)
    if factor <= 1:
        return pixels
    return np.asarray(Image.fromarray(pixels).reduce(factor))


def image_signals(pixels: np.ndarray) -> dict[str, float]:
    px = analysis_view(pixels)
    if px.ndim == 2:
        px = np.repeat(px[..., None], 3, axis=-1)
    px = px[..., :3].astype(np.float32)
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    luma = px @ _LUMA
    lap = luma[1:-1, :-2] + luma[1:-1, 2:] + luma[:-2, 1:-1] + luma[2:, 1:-1] - 4.0 * luma[1:-1, 1:-1]
    rg = r - g
    yb = 0.5 * (r + g) - b
    colourfulness = (math.hypot(float(rg.std()), float(yb.std()))
                     + 0.3 * math.hypot(float(rg.mean()), float(yb.mean())))
    clipped = float(np.count_nonzero((luma <= 2.0) | (luma >= 253.0))) / luma.size
    return {
        "sharpness": float(lap.var()) if lap.size else 0.0,
        "colourfulness": colourfulness,
        "exposure": float(luma.mean()) / 255.0,
        "clipped_fraction": clipped,
    }


def change_ratio(source: np.ndarray, target: np.ndarray, pixel_delta: int) -> float:
    """Share of pixels whose largest channel difference exceeds `pixel_delta` (the edit's mask)."""
    diff = np.abs(source.astype(np.int16) - target.astype(np.int16))
    if diff.ndim == 3:
        diff = diff.max(axis=-1)
    return float(np.count_nonzero(diff > pixel_delta)) / diff.size
