"""Per-image quality signals, cheap enough to run on every sample (one compiled pass over uint8 pixels).

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

import numba
import numpy as np
from PIL import Image

SIGNALS = ("sharpness", "colourfulness", "exposure", "clipped_fraction")
ANALYSIS_SIDE = 128


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
    return image_signals_batch([analysis_view(pixels)])[0]


def image_signals_batch(views: list[np.ndarray]) -> list[dict[str, float]]:
    """`image_signals` of each analysis view: one compiled pass per view gathers exact integer sums, then the
    signals of the whole batch come out of a few vectorised float64 steps. Every step is per image, so a
    view gets the same values alone or in any batch (tests/unit/test_curation_batch.py)."""
    sums = np.empty((len(views), len(_SUMS)), dtype=np.int64)
    shapes = np.empty((len(views), 2), dtype=np.int64)
    for i, v in enumerate(views):
        sums[i], shapes[i] = view_sums(v)
    return signals_from_sums(sums, shapes)


def view_sums(view: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """The integer sums of one view (any mode, reduced first when above the analysis scale), and its size."""
    px = _integer_rgb(analysis_view(view) if max(view.shape[:2]) > ANALYSIS_SIDE else view)
    return _signal_sums(px), px.shape[:2]


def stack_sums(stack: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """`view_sums` of the (H, W, 3) uint8 views `stack[rows]` (at most the analysis scale), in one call."""
    out = np.empty((len(rows), len(_SUMS)), dtype=np.int64)
    _stack_signal_sums(stack, rows, out)
    return out


# Integer sums `_signal_sums` gathers per image. Luma is kept as L = 1000 x luma = 299 R + 587 G + 114 B and
# yellow-blue as 2 x yb = R + G - 2 B, so every sum is an exact integer (no float rounding, any order).
_SUMS = ("luma", "clipped", "rg", "rg_sq", "yb2", "yb2_sq", "lap", "lap_sq")
SUM_COUNT = len(_SUMS)


def _integer_rgb(px: np.ndarray) -> np.ndarray:
    """(H, W, >=3) integer pixels; greyscale repeated to three channels, floats rounded into 0-255."""
    if px.ndim == 2:
        px = px[..., None]
    if px.shape[-1] < 3:
        px = np.repeat(px[..., :1], 3, axis=-1)
    if not np.issubdtype(px.dtype, np.integer):
        px = np.clip(np.rint(px), 0, 255).astype(np.uint8)
    return px


@numba.njit(cache=True, nogil=True)
def _signal_sums(px: np.ndarray) -> np.ndarray:
    """The `_SUMS` of one (H, W, >=3) image, in one pass over the pixels and one over the luma."""
    h, w = px.shape[0], px.shape[1]
    luma = np.empty((h, w), np.int64)
    s_luma = n_clip = s_rg = s_rg2 = s_yb = s_yb2 = s_lap = s_lap2 = 0
    for y in range(h):
        for x in range(w):
            r, g, b = np.int64(px[y, x, 0]), np.int64(px[y, x, 1]), np.int64(px[y, x, 2])
            lum = 299 * r + 587 * g + 114 * b
            luma[y, x] = lum
            s_luma += lum
            n_clip += lum <= 2000 or lum >= 253000
            rg, yb2 = r - g, r + g - 2 * b
            s_rg += rg
            s_rg2 += rg * rg
            s_yb += yb2
            s_yb2 += yb2 * yb2
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            lap = luma[y, x - 1] + luma[y, x + 1] + luma[y - 1, x] + luma[y + 1, x] - 4 * luma[y, x]
            s_lap += lap
            s_lap2 += lap * lap
    return np.array([s_luma, n_clip, s_rg, s_rg2, s_yb, s_yb2, s_lap, s_lap2], dtype=np.int64)


# Widest view `_signal_sums_u8` takes: its per-row int32 sums stay exact below this width (a row of luma sums to at
# most 255 000 x width; a Laplacian term is at most 1 020 000 in size), far above the analysis scale.
_U8_MAX_WIDTH = 2048


@numba.njit(cache=True, nogil=True)
def _signal_sums_u8(px: np.ndarray, luma: np.ndarray) -> np.ndarray:
    """`_signal_sums` of an (H, W, 3) uint8 image with W <= `_U8_MAX_WIDTH`, the same integers faster: per-pixel
    terms in int32 (exact for 8-bit channels), summed per row in int32 (exact below that width) and then in int64;
    loops over contiguous rows that the compiler vectorises. `luma` is (H, W) int32 scratch."""
    h, w = px.shape[0], px.shape[1]
    flat = px.reshape(h, w * 3)
    s_luma = n_clip = s_rg = s_rg2 = s_yb = s_yb2 = s_lap = s_lap2 = 0
    for y in range(h):
        row = flat[y]
        lrow = luma[y]
        for x in range(w):
            lrow[x] = (np.int32(299) * np.int32(row[3 * x]) + np.int32(587) * np.int32(row[3 * x + 1])
                       + np.int32(114) * np.int32(row[3 * x + 2]))
        a_l = a_c = a_rg = a_rg2 = a_yb = a_yb2 = np.int32(0)
        for x in range(w):
            r, g, b = np.int32(row[3 * x]), np.int32(row[3 * x + 1]), np.int32(row[3 * x + 2])
            lum = lrow[x]
            a_l += lum
            a_c += np.int32((lum <= 2000) | (lum >= 253000))
            rg, yb2 = r - g, r + g - 2 * b
            a_rg += rg
            a_rg2 += rg * rg
            a_yb += yb2
            a_yb2 += yb2 * yb2
        s_luma += a_l
        n_clip += a_c
        s_rg += a_rg
        s_rg2 += a_rg2
        s_yb += a_yb
        s_yb2 += a_yb2
    for y in range(1, h - 1):
        up, mid, down = luma[y - 1], luma[y], luma[y + 1]
        a_lap = np.int32(0)
        a_lap2 = np.int64(0)
        for x in range(1, w - 1):
            lap = mid[x - 1] + mid[x + 1] + up[x] + down[x] - 4 * mid[x]
            a_lap += lap
            a_lap2 += np.int64(lap) * np.int64(lap)
        s_lap += a_lap
        s_lap2 += a_lap2
    return np.array([s_luma, n_clip, s_rg, s_rg2, s_yb, s_yb2, s_lap, s_lap2], dtype=np.int64)


@numba.njit(cache=True, nogil=True)
def _stack_signal_sums(stack: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
    """`_signal_sums` of each uint8 image `stack[rows[i]]` into `out[i]` (`_signal_sums_u8` where it applies)."""
    luma = np.empty((stack.shape[1], stack.shape[2]), np.int32)
    for i in range(rows.shape[0]):
        if stack.shape[2] <= _U8_MAX_WIDTH:
            out[i] = _signal_sums_u8(stack[rows[i]], luma)
        else:
            out[i] = _signal_sums(stack[rows[i]])


def _variance(total: np.ndarray, total_sq: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Population variance from integer sums: (n * sum_sq - sum^2) / n^2, exact numerator where it fits."""
    n_f = np.maximum(n, 1).astype(np.float64)
    return np.maximum(total_sq.astype(np.float64) - total.astype(np.float64) * (total / n_f), 0.0) / n_f


def signals_from_sums(sums: np.ndarray, shapes: np.ndarray) -> list[dict[str, float]]:
    s = {k: sums[:, j] for j, k in enumerate(_SUMS)}
    n = shapes[:, 0] * shapes[:, 1]
    n_lap = np.maximum(shapes[:, 0] - 2, 0) * np.maximum(shapes[:, 1] - 2, 0)
    sharp = np.where(n_lap > 0, _variance(s["lap"], s["lap_sq"], n_lap) / 1e6, 0.0)
    rg_std = np.sqrt(_variance(s["rg"], s["rg_sq"], n))
    yb_std = np.sqrt(_variance(s["yb2"], s["yb2_sq"], n)) / 2.0
    rg_mean, yb_mean = s["rg"] / n, s["yb2"] / (2.0 * n)
    colour = np.hypot(rg_std, yb_std) + 0.3 * np.hypot(rg_mean, yb_mean)
    exposure = s["luma"] / (1000.0 * n) / 255.0
    clipped = s["clipped"] / n
    return [{"sharpness": a, "colourfulness": b, "exposure": c, "clipped_fraction": d}
            for a, b, c, d in zip(sharp.tolist(), colour.tolist(), exposure.tolist(), clipped.tolist(),
                                  strict=True)]


def change_ratio(source: np.ndarray, target: np.ndarray, pixel_delta: int) -> float:
    """Share of pixels whose largest channel difference exceeds `pixel_delta` (the edit's mask)."""
    diff = np.abs(source.astype(np.int16) - target.astype(np.int16))
    if diff.ndim == 3:
        diff = diff.max(axis=-1)
    return float(np.count_nonzero(diff > pixel_delta)) / diff.size
