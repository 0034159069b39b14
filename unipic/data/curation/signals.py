"""Per-image quality signals, cheap enough to run on every sample (numpy on uint8 pixels).

- sharpness: variance of the 4-neighbour Laplacian of luminance (0 for a flat image; blur lowers it)
- colourfulness: Hasler & Suesstrunk (2003) M on the rg / yb opponent channels (0 for greyscale)
- exposure: mean luminance in [0, 1]
- clipped_fraction: share of pixels at the ends of the range (blown highlights / crushed shadows)
"""

from __future__ import annotations

import numpy as np

SIGNALS = ("sharpness", "colourfulness", "exposure", "clipped_fraction")


def image_signals(pixels: np.ndarray) -> dict[str, float]:
    px = pixels.astype(np.float32)
    if px.ndim == 2:
        px = np.repeat(px[..., None], 3, axis=-1)
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    lap = luma[1:-1, :-2] + luma[1:-1, 2:] + luma[:-2, 1:-1] + luma[2:, 1:-1] - 4.0 * luma[1:-1, 1:-1]
    rg = r - g
    yb = 0.5 * (r + g) - b
    colourfulness = float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
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
