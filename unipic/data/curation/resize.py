"""The pHash's bilinear downscale of a batch stack where the scale is an integer factor: Pillow's sums, fewer steps.

`dedup._resample` reproduces Pillow's fixed-point two-pass resampler one output at a time (a gather of a few taps
per output, which does not vectorise). When the input is an integer multiple of the output (a 64 px view to the
32 px hash input is 2:1, a 128 px one 4:1), every output away from the two edges has the same taps at a first
input that advances by the factor (`uniform_span`). For those the horizontal pass here computes the tap sum at
EVERY input position of a row as a few whole-row multiply-adds (vectorised), then keeps every factor-th one; the
vertical pass sums whole rows of the horizontal result. The edge outputs take their own taps as in `_resample`.

Each output is the same integer sum as Pillow's (the same taps times the same pixels, plus the same rounding
term, in int32: bilinear taps are non-negative and sum to about 2^22, so no partial sum overflows), shifted and
clipped the same way, so the result is bit for bit Pillow's horizontal-then-vertical resize, whatever the order of
the additions (tests/unit/test_curation_batch.py compares it with Pillow on noise and flat scenes).
"""

from __future__ import annotations

import numba
import numpy as np

_PRECISION_BITS = 22
# Largest tap sum for which (2^21 + 255 * sum) >> 22 <= 255 (see `uniform_span`).
_NO_CLIP_SUM = ((256 << _PRECISION_BITS) - (1 << (_PRECISION_BITS - 1)) - 1) // 255


def uniform_span(taps: np.ndarray, bounds: np.ndarray, in_size: int) -> tuple[int, int] | None:
    """The longest run [lo, hi) of outputs with output lo's taps (at least one) and a first input one factor
    further on per output, when `in_size` is an integer multiple (the factor) of the output size; None otherwise
    or when no run of at least 2 exists (then there is nothing to share). `taps`, `bounds` as
    `dedup._bilinear_coeffs` returns them.

    Also None unless the taps are non-negative and sum to at most `_NO_CLIP_SUM`: then for pixels in 0..255 the
    shifted sum (2^21 + 255 * sum) >> 22 is at most 255, so Pillow's clip is the identity on these outputs and the
    kernel skips it (bilinear taps always qualify: they are normalised to 2^22, give or take rounding)."""
    n = len(taps)
    if in_size % n or (taps < 0).any() or int(taps.sum(axis=1, dtype=np.int64).max()) > _NO_CLIP_SUM:
        return None
    factor = in_size // n
    best = (0, 0)
    lo = 0
    while lo < n:
        k = int(bounds[lo, 1])
        hi = lo + 1
        while (hi < n and int(bounds[hi, 1]) == k and np.array_equal(taps[hi, :k], taps[lo, :k])
               and int(bounds[hi, 0]) == int(bounds[lo, 0]) + factor * (hi - lo)):
            hi += 1
        if k >= 1 and hi - lo > best[1] - best[0]:
            best = (lo, hi)
        lo = hi
    return best if best[1] - best[0] >= 2 else None


@numba.njit(cache=True, nogil=True, inline="always")
def _clip8(v: int) -> int:
    return min(max(v, 0), 255)


@numba.njit(cache=True, nogil=True)
def resample_stack_uniform(stack: np.ndarray, rows: np.ndarray, taps_x: np.ndarray, bounds_x: np.ndarray,
                           taps_y: np.ndarray, bounds_y: np.ndarray, span_x: tuple[int, int],
                           span_y: tuple[int, int], out: np.ndarray) -> None:
    """Pillow's bilinear resize, horizontal pass first, of every (H, W, 3) uint8 image `stack[rows[i]]` into
    `out[i]` (float32, (side, side * 3)); outputs in `span_x` / `span_y` share one set of taps (`uniform_span`)."""
    h, w = stack.shape[1], stack.shape[2]
    ow, oh = taps_x.shape[0], taps_y.shape[0]
    half = np.int32(1 << (_PRECISION_BITS - 1))
    lo_x, hi_x = span_x
    lo_y, hi_y = span_y
    kx, ky = bounds_x[lo_x, 1], bounds_y[lo_y, 1]
    n_full = 3 * (w - kx + 1)  # every input position whose kx taps lie inside the row, times 3 channels
    full = np.empty(n_full, np.int32)
    step = 3 * (bounds_x[lo_x + 1, 0] - bounds_x[lo_x, 0])  # the factor, in row elements
    mid = np.empty((h, ow * 3), np.int32)
    acc = np.empty(ow * 3, np.int32)
    for i in range(rows.shape[0]):
        img = stack[rows[i]].reshape(h, w * 3)
        for y in range(h):
            row = img[y]
            for t in range(kx):
                k = taps_x[lo_x, t]
                src = row[3 * t:3 * t + n_full]
                if t == 0:
                    for j in range(n_full):
                        full[j] = half + np.int32(src[j]) * k
                else:
                    for j in range(n_full):
                        full[j] += np.int32(src[j]) * k
            m = mid[y]
            b = 3 * bounds_x[lo_x, 0]
            for ox in range(lo_x, hi_x):
                m[3 * ox] = full[b] >> _PRECISION_BITS  # no clip needed: `uniform_span`
                m[3 * ox + 1] = full[b + 1] >> _PRECISION_BITS
                m[3 * ox + 2] = full[b + 2] >> _PRECISION_BITS
                b += step
            for e in range(ow - (hi_x - lo_x)):
                ox = e if e < lo_x else hi_x + e - lo_x
                first = bounds_x[ox, 0]
                a0 = a1 = a2 = half
                for t in range(bounds_x[ox, 1]):
                    k = taps_x[ox, t]
                    a0 += np.int32(row[3 * (first + t)]) * k
                    a1 += np.int32(row[3 * (first + t) + 1]) * k
                    a2 += np.int32(row[3 * (first + t) + 2]) * k
                m[3 * ox] = _clip8(a0 >> _PRECISION_BITS)
                m[3 * ox + 1] = _clip8(a1 >> _PRECISION_BITS)
                m[3 * ox + 2] = _clip8(a2 >> _PRECISION_BITS)
        o = out[i]
        for oy in range(oh):
            first = bounds_y[oy, 0]
            n_taps = ky if lo_y <= oy < hi_y else bounds_y[oy, 1]
            tap_row = lo_y if lo_y <= oy < hi_y else oy
            if n_taps == 0:
                acc[:] = half
            for t in range(n_taps):
                k = taps_y[tap_row, t]
                src = mid[first + t]
                if t == 0:
                    for j in range(ow * 3):
                        acc[j] = half + src[j] * k
                else:
                    for j in range(ow * 3):
                        acc[j] += src[j] * k
            orow = o[oy]
            if lo_y <= oy < hi_y:
                for j in range(ow * 3):
                    orow[j] = acc[j] >> _PRECISION_BITS  # no clip needed: `uniform_span`
            else:
                for j in range(ow * 3):
                    orow[j] = _clip8(acc[j] >> _PRECISION_BITS)
