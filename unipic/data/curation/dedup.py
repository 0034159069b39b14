"""Exact dedup (content hash) and near-dup removal (perceptual hash within a Hamming radius).

The perceptual hash is the classic DCT pHash, optionally per RGB channel: ShapesWorld's flat colours make
a red and a blue circle at the same place identical in luminance, and those are different samples.
Near-duplicate lookup is multi-index hashing: split the hash into max_hamming+1 bands; by the pigeonhole
principle two hashes within the radius share at least one band exactly, so only those are compared.
For edit triplets both keys are on the pair (source + target).
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache

import numba
import numpy as np
from PIL import Image

from unipic.config.curation import CurationConfig
from unipic.data.curation.base import Filter
from unipic.data.curation.hamming import HammingIndex
from unipic.data.curation.resize import resample_stack_uniform, uniform_span
from unipic.data.curation.sample import Sample
from unipic.data.curation.signals import analysis_view
from unipic.data.curation.stacks import gather
from unipic.data.shapes.detect_stacked import scratch_array

PHASH_MARGIN = 32.0
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _dct_rows(n: int, k: int) -> np.ndarray:
    """The first k rows of the orthonormal DCT-II matrix of size n (coef = D @ x @ D.T)."""
    i = np.arange(n)
    d = np.cos(np.pi * (2 * i[None, :] + 1) * np.arange(k)[:, None] / (2 * n)) * np.sqrt(2.0 / n)
    d[0] /= np.sqrt(2.0)
    return d.astype(np.float32)


_DCT: dict[tuple[int, int], np.ndarray] = {}


def phash_bits(pixels: np.ndarray, size: int = 8, channels: str = "rgb") -> np.ndarray:
    """Boolean vector: per channel, which low-frequency DCT coefficients exceed their median by a margin.

    The margin (in orthonormal-DCT pixel units) keeps flat channels stable: a white background's red channel
    has only noise-level AC coefficients, which would otherwise become random bits. Only the size x size
    low-frequency block is computed (two small matrix products), not the full DCT."""
    return _stack_bits(_hash_input(pixels, size, channels)[None], size)[0]


def phash_bits_batch(views: list[np.ndarray], size: int = 8, channels: str = "rgb") -> list[np.ndarray]:
    """`phash_bits` of each image: the resize stays per image (PIL), the DCT block, medians and bits run
    over the stack (one batched matrix product; per matrix the same BLAS call, so the same bits)."""
    smalls = [_hash_input(v, size, channels) for v in views]
    out: list[np.ndarray | None] = [None] * len(smalls)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, sm in enumerate(smalls):
        groups.setdefault(sm.shape, []).append(i)
    for idx in groups.values():
        for i, bits in zip(idx, _stack_bits(np.stack([smalls[i] for i in idx]), size), strict=True):
            out[i] = bits
    return out  # type: ignore[return-value]


def stack_phash_bits(stack: np.ndarray, rows: np.ndarray, size: int = 8, channels: str = "rgb") -> np.ndarray:
    """(N, bits) `phash_bits` of the (H, W, 3) uint8 views `stack[rows]` (at most the analysis scale): one
    compiled resize call for the stack (`stack_hash_inputs`), then the same batched DCT as `phash_bits_batch`."""
    smalls = stack_hash_inputs(stack, rows, size * 4)
    if smalls is None:
        return _stack_bits(np.stack([_hash_input(stack[r], size, channels) for r in rows.tolist()]), size)
    if channels == "luma":
        smalls = np.stack([(small @ _LUMA)[..., None] for small in smalls])
    return _stack_bits(smalls, size)


def stack_hash_inputs(stack: np.ndarray, rows: np.ndarray, side: int) -> np.ndarray | None:
    """(N, side, side, 3) float32: `bilinear_resize` of each view `stack[rows]`, in one compiled call, where
    Pillow's resampler is reproduced for the stack's shape (None elsewhere). Where the scale is an integer
    factor and Pillow runs its horizontal pass first (square views), the whole-row kernel of `resize`, else
    `_resample` per image. The array is a reused scratch buffer: valid until the next call."""
    h, w = stack.shape[1:3]
    order = _pass_order(h, w, side)
    if order is None:
        return None
    smalls = scratch_array("phash_smalls", (len(rows), side, side, 3), np.float32)
    stack, rows = np.ascontiguousarray(stack), np.asarray(rows, dtype=np.int64)
    spans = _uniform_spans(h, w, side)
    if order and spans is not None:
        resample_stack_uniform(stack, rows, *_bilinear_coeffs(w, side), *_bilinear_coeffs(h, side), *spans,
                               smalls.reshape(len(rows), side, side * 3))
    else:
        _resample_stack(stack, rows, *_bilinear_coeffs(w, side), *_bilinear_coeffs(h, side), order, smalls)
    return smalls


@numba.njit(cache=True, nogil=True)
def _resample_stack(stack: np.ndarray, rows: np.ndarray, taps_x: np.ndarray, bounds_x: np.ndarray,
                    taps_y: np.ndarray, bounds_y: np.ndarray, horizontal_first: bool, out: np.ndarray) -> None:
    for i in range(rows.shape[0]):
        _resample(stack[rows[i]], taps_x, bounds_x, taps_y, bounds_y, horizontal_first, out[i])


def _hash_input(pixels: np.ndarray, size: int, channels: str) -> np.ndarray:
    """The (4*size, 4*size, C) float32 image the hash reads: analysis view, bilinear resize, channels."""
    side = size * 4
    small = bilinear_resize(analysis_view(pixels), side)
    if small.ndim == 2:
        small = small[..., None]
    small = small[..., :3]
    if channels == "luma" and small.shape[-1] == 3:
        small = (small @ _LUMA)[..., None]
    return small


def bilinear_resize(view: np.ndarray, side: int) -> np.ndarray:
    """`Image.fromarray(view).resize((side, side), BILINEAR)` as float32, bit for bit: for RGB uint8 views a
    compiled copy of Pillow's fixed-point two-pass resampler (PIL's call costs twice as much on these sizes),
    used for an input shape only once it has reproduced Pillow exactly on a noise probe of that shape (Pillow
    picks the order of its two passes by their cost; the probe also pins that); PIL itself otherwise."""
    h, w = view.shape[:2]
    order = _pass_order(h, w, side) if view.ndim == 3 and view.shape[2] == 3 and view.dtype == np.uint8 else None
    if order is None:
        return np.asarray(Image.fromarray(view).resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32)
    return _resize_rgb(view, side, order)


def _resize_rgb(view: np.ndarray, side: int, horizontal_first: bool) -> np.ndarray:
    h, w, _ = view.shape
    out = np.empty((side, side, 3), dtype=np.float32)
    _resample(np.ascontiguousarray(view), *_bilinear_coeffs(w, side), *_bilinear_coeffs(h, side),
              horizontal_first, out)
    return out


@lru_cache(maxsize=256)
def _uniform_spans(h: int, w: int, side: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The outputs along x and along y that share their taps (`resize.uniform_span`), when both axes have some."""
    span_x = uniform_span(*_bilinear_coeffs(w, side), w)
    span_y = uniform_span(*_bilinear_coeffs(h, side), h)
    return None if span_x is None or span_y is None else (span_x, span_y)


@lru_cache(maxsize=256)
def _pass_order(h: int, w: int, side: int) -> bool | None:
    """Which pass order reproduces Pillow on an (h, w) RGB image (horizontal first: True), None if neither."""
    probe = np.random.default_rng(h * 100_003 + w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    want = np.asarray(Image.fromarray(probe).resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32)
    cheaper_first = side * h <= w * side
    for order in (cheaper_first, not cheaper_first):
        if np.array_equal(_resize_rgb(probe, side, order), want):
            return order
    return None


@lru_cache(maxsize=256)
def _bilinear_coeffs(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bilinear filter: per output position, the
    first input index, the number of taps, and the taps in 22-bit fixed point (same double arithmetic)."""
    scale = float(in_size) / out_size
    filterscale = max(scale, 1.0)
    support = filterscale
    taps = np.zeros((out_size, int(math.ceil(support)) * 2 + 1), dtype=np.int32)
    bounds = np.zeros((out_size, 2), dtype=np.int64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        n = min(int(center + support + 0.5), in_size) - xmin
        ws = [max(1.0 - abs((x + xmin - center + 0.5) * (1.0 / filterscale)), 0.0) for x in range(n)]
        total = 0.0
        for v in ws:
            total += v
        for x, v in enumerate(ws):
            taps[xx, x] = int(0.5 + (v / total if total != 0.0 else v) * (1 << _PRECISION_BITS))
        bounds[xx] = (xmin, n)
    return taps, bounds


_PRECISION_BITS = 22


@numba.njit(cache=True, nogil=True)
def _resample_rows(src: np.ndarray, taps: np.ndarray, bounds: np.ndarray, out: np.ndarray) -> None:
    """One Pillow pass along axis 0 of int32 rows: out[o] = clip((2^21 + sum_t src[first + t] * tap_t) >> 22)."""
    acc = np.empty(src.shape[1], np.int32)
    for o in range(out.shape[0]):
        acc[:] = 1 << (_PRECISION_BITS - 1)
        first = bounds[o, 0]
        for t in range(bounds[o, 1]):
            tap = taps[o, t]
            row = src[first + t]
            for j in range(src.shape[1]):
                acc[j] += row[j] * tap
        for j in range(src.shape[1]):
            v = acc[j] >> _PRECISION_BITS
            out[o, j] = 0 if v < 0 else (255 if v > 255 else v)


@numba.njit(cache=True, nogil=True)
def _resample(view: np.ndarray, taps_x: np.ndarray, bounds_x: np.ndarray, taps_y: np.ndarray,
              bounds_y: np.ndarray, horizontal_first: bool, out: np.ndarray) -> None:
    """Both passes over an (H, W, 3) uint8 view into `out` (side, side, 3). Horizontal first: the three
    channels of a pixel at once, then the vertical pass as a vectorisable sum of whole rows; vertical first: a
    vertical pass on rows, and the horizontal one on the transposed image."""
    h, w, c = view.shape
    oh, ow = out.shape[0], out.shape[1]
    if horizontal_first:
        _resample_hv(view, taps_x, bounds_x, taps_y, bounds_y, out)
        return
    rows = np.empty((h, w * c), np.int32)
    for y in range(h):
        for j in range(w * c):
            rows[y, j] = view[y, j // c, j % c]
    short = np.empty((oh, w * c), np.int32)
    _resample_rows(rows, taps_y, bounds_y, short)
    cols = np.empty((w, oh * c), np.int32)
    for y in range(oh):
        for x in range(w):
            for ch in range(c):
                cols[x, y * c + ch] = short[y, x * c + ch]
    done = np.empty((ow, oh * c), np.int32)
    _resample_rows(cols, taps_x, bounds_x, done)
    for x in range(ow):
        for y in range(oh):
            for ch in range(c):
                out[y, x, ch] = done[x, y * c + ch]


@numba.njit(cache=True, nogil=True)
def _clip8(v: int) -> int:
    return 0 if v < 0 else (255 if v > 255 else v)


@numba.njit(cache=True, nogil=True)
def _resample_hv(view: np.ndarray, taps_x: np.ndarray, bounds_x: np.ndarray, taps_y: np.ndarray,
                 bounds_y: np.ndarray, out: np.ndarray) -> None:
    """`_resample`, horizontal pass first (the same fixed-point sums, in int32 as Pillow's)."""
    h = view.shape[0]
    oh, ow = out.shape[0], out.shape[1]
    half = np.int32(1 << (_PRECISION_BITS - 1))
    mid = np.empty((h, ow * 3), np.int32)
    for y in range(h):
        for ox in range(ow):
            first = bounds_x[ox, 0]
            a0 = a1 = a2 = half
            for t in range(bounds_x[ox, 1]):
                k = taps_x[ox, t]
                a0 += np.int32(view[y, first + t, 0]) * k
                a1 += np.int32(view[y, first + t, 1]) * k
                a2 += np.int32(view[y, first + t, 2]) * k
            mid[y, 3 * ox] = _clip8(a0 >> _PRECISION_BITS)
            mid[y, 3 * ox + 1] = _clip8(a1 >> _PRECISION_BITS)
            mid[y, 3 * ox + 2] = _clip8(a2 >> _PRECISION_BITS)
    acc = np.empty(ow * 3, np.int32)
    for oy in range(oh):
        acc[:] = half
        first = bounds_y[oy, 0]
        for t in range(bounds_y[oy, 1]):
            k = taps_y[oy, t]
            src = mid[first + t]
            for j in range(ow * 3):
                acc[j] += src[j] * k
        for x in range(ow):
            for ch in range(3):
                out[oy, x, ch] = _clip8(acc[3 * x + ch] >> _PRECISION_BITS)


def _stack_bits(smalls: np.ndarray, size: int) -> np.ndarray:
    """(N, bits) hash bits of an (N, side, side, C) stack of hash inputs."""
    n, side, _, c = smalls.shape
    d = _DCT.get((side, size))
    if d is None:
        d = _DCT[(side, size)] = _dct_rows(side, size)
    coef = (d @ np.ascontiguousarray(smalls.transpose(0, 3, 1, 2)) @ d.T).reshape(n, c, -1).transpose(0, 2, 1)
    srt = np.sort(coef, axis=1)
    mid = coef.shape[1] // 2
    med = (srt[:, mid - 1] + srt[:, mid]) / 2 if coef.shape[1] % 2 == 0 else srt[:, mid]
    return (coef > med[:, None, :] + PHASH_MARGIN).transpose(0, 2, 1).reshape(n, -1)


def bits_to_int(bits: np.ndarray) -> int:
    """The bits as one integer, first bit most significant (no padding)."""
    return int.from_bytes(np.packbits(bits).tobytes(), "big") >> ((-len(bits)) % 8)


class ExactDedupFilter(Filter):
    """Keeps the first sample with a given content: the image bytes (t2i) or the (source, target) pair."""

    name = "exact_dedup"

    def __init__(self, cfg: CurationConfig) -> None:
        super().__init__(cfg)
        self._seen: set[str] = set()

    def check(self, sample: Sample) -> str | None:
        sample.hashes["sha256"] = sha256_hex(sample.image or b"")
        if sample.is_edit:
            sample.hashes["target_sha256"] = sha256_hex(sample.target or b"")
            key = sha256_hex((sample.hashes["sha256"] + sample.hashes["target_sha256"]).encode())
        else:
            key = sample.hashes["sha256"]
        sample.hashes["content_sha256"] = key
        if not self.cfg.dedup.exact:
            return None
        if key in self._seen:
            return "duplicate"
        self._seen.add(key)
        return None


class NearDupFilter(Filter):
    """Perceptual-hash near duplicates, per kind (t2i images, edit pairs), first one kept."""

    name = "near_dup"

    def __init__(self, cfg: CurationConfig) -> None:
        super().__init__(cfg)
        self._index: dict[tuple[str, int], HammingIndex] = {}

    def _hash(self, pixels: np.ndarray) -> np.ndarray:
        return phash_bits(pixels, self.cfg.dedup.phash_size, self.cfg.dedup.channels)

    def check(self, sample: Sample) -> str | None:
        assert sample.pixels is not None, "near-dup runs after decode"
        bits = self._hash(sample.analysis("image"))
        if sample.is_edit and sample.target_pixels is not None:
            bits = np.concatenate([bits, self._hash(sample.analysis("target"))])
        return self._verdicts([sample], [bits])[0]

    def check_batch(self, samples: list[Sample]) -> list[str | None]:
        for s in samples:
            assert s.pixels is not None, "near-dup runs after decode"
        bits = self._hash_batch(samples, "image")
        pairs = [i for i, s in enumerate(samples) if s.is_edit and s.target_pixels is not None]
        if pairs:
            bits = list(bits)
            for i, tb in zip(pairs, self._hash_batch([samples[i] for i in pairs], "target"), strict=True):
                bits[i] = np.concatenate([bits[i], tb])
        return self._verdicts(samples, bits)

    def _hash_batch(self, samples: list[Sample], which: str) -> list[np.ndarray] | np.ndarray:
        """`_hash` of each sample's `which` view: batch stacks in one resize call each, the rest per image. One
        (N, bits) array where the whole batch is one stack (the usual case), else a list of hashes."""
        cfg = self.cfg.dedup
        groups, other = gather(samples, which)
        if len(groups) == 1 and not other:
            g = groups[0]
            hashed = stack_phash_bits(g.stack, g.rows, cfg.phash_size, cfg.channels)
            if g.positions == list(range(len(samples))):
                return hashed
            ordered = np.empty_like(hashed)
            ordered[g.positions] = hashed
            return ordered
        out: list[np.ndarray] = [np.zeros(0, bool)] * len(samples)
        for g in groups:
            for p, b in zip(g.positions, stack_phash_bits(g.stack, g.rows, cfg.phash_size, cfg.channels),
                            strict=True):
                out[p] = b
        views = [samples[p].analysis(which) for p in other]
        for p, b in zip(other, phash_bits_batch(views, cfg.phash_size, cfg.channels), strict=True):
            out[p] = b
        return out

    def _verdicts(self, samples: list[Sample], bits: list[np.ndarray] | np.ndarray) -> list[str | None]:
        """Record each hash; a duplicate when a kept sample of the same kind is within the radius (earlier
        samples of the batch included, as one at a time). `bits`: one hash per sample, or an (N, bits) array."""
        for s, h in zip(samples, hex_hashes(bits), strict=True):
            s.hashes["phash"] = h
        out: list[str | None] = [None] * len(samples)
        if not self.cfg.dedup.near:
            return out
        groups: dict[tuple[str, int], list[int]] = {}
        kinds = {s.kind for s in samples}
        if isinstance(bits, np.ndarray) and len(kinds) == 1:
            groups[(kinds.pop(), bits.shape[1])] = list(range(len(samples)))
        else:
            for i, (s, b) in enumerate(zip(samples, bits, strict=True)):
                groups.setdefault((s.kind, len(b)), []).append(i)
        for (kind, n_bits), idx in groups.items():
            index = self._index.get((kind, n_bits))
            if index is None:
                index = self._index[(kind, n_bits)] = HammingIndex(n_bits, self.cfg.dedup.max_hamming)
            rows = bits if len(idx) == len(bits) else np.stack([bits[i] for i in idx])
            for i, kept in zip(idx, index.add_unless_near(rows).tolist(), strict=True):
                out[i] = None if kept else "duplicate"
        return out


def hex_hashes(bits: list[np.ndarray] | np.ndarray) -> list[str]:
    """Each hash as hex digits, first bit most significant (`bits_to_int`, zero padded to whole digits).
    `bits`: hashes, or an (N, bits) array of them."""
    if isinstance(bits, np.ndarray) and bits.ndim == 2 and bits.shape[1] % 8 == 0:
        raw = np.packbits(bits, axis=1)
        data, width = raw.tobytes(), raw.shape[1]
        return [data[i * width:(i + 1) * width].hex() for i in range(len(bits))]
    if len(bits) and len({len(b) for b in bits}) == 1 and len(bits[0]) % 8 == 0:
        raw = np.packbits(np.stack(bits), axis=1)
        data, width = raw.tobytes(), raw.shape[1]
        return [data[i * width:(i + 1) * width].hex() for i in range(len(bits))]
    return [format(bits_to_int(b), f"0{(len(b) + 3) // 4}x") for b in bits]
