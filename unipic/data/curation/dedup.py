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
from collections import defaultdict
from functools import lru_cache

import numba
import numpy as np
from PIL import Image

from unipic.config.curation import CurationConfig
from unipic.data.curation.base import Filter
from unipic.data.curation.sample import Sample
from unipic.data.curation.signals import analysis_view

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
    """Both passes over an (H, W, 3) uint8 view into `out` (side, side, 3); a horizontal pass runs on the
    transposed image so that each pass is a vectorisable sum of whole rows."""
    h, w, c = view.shape
    oh, ow = out.shape[0], out.shape[1]
    if horizontal_first:
        cols = np.empty((w, h * c), np.int32)
        for x in range(w):
            for y in range(h):
                for ch in range(c):
                    cols[x, y * c + ch] = view[y, x, ch]
        narrow = np.empty((ow, h * c), np.int32)
        _resample_rows(cols, taps_x, bounds_x, narrow)
        rows = np.empty((h, ow * c), np.int32)
        for y in range(h):
            for x in range(ow):
                for ch in range(c):
                    rows[y, x * c + ch] = narrow[x, y * c + ch]
        done = np.empty((oh, ow * c), np.int32)
        _resample_rows(rows, taps_y, bounds_y, done)
        for y in range(oh):
            for j in range(ow * c):
                out[y, j // c, j % c] = done[y, j]
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


class HammingIndex:
    """Hashes seen so far; `near(h)` finds one within `radius` bits, checking band-sharing candidates only."""

    def __init__(self, n_bits: int, radius: int) -> None:
        self.n_bits = n_bits
        self.radius = radius
        n_bands = min(radius + 1, n_bits)
        edges = np.linspace(0, n_bits, n_bands + 1).astype(int)
        self._bands = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
        self._tables: list[dict[int, list[int]]] = [defaultdict(list) for _ in self._bands]

    def _band_values(self, h: int) -> list[int]:
        return [(h >> (self.n_bits - b)) & ((1 << (b - a)) - 1) for a, b in self._bands]

    def near(self, h: int, bands: list[int] | None = None) -> int | None:
        for table, v in zip(self._tables, bands or self._band_values(h), strict=True):
            for other in table.get(v, ()):
                if (h ^ other).bit_count() <= self.radius:
                    return other
        return None

    def add(self, h: int, bands: list[int] | None = None) -> None:
        for table, v in zip(self._tables, bands or self._band_values(h), strict=True):
            table[v].append(h)

    def add_unless_near(self, h: int) -> bool:
        """`near(h)` is None then `add(h)` (True), else False; the bands are cut once."""
        bands = self._band_values(h)
        if self.near(h, bands) is not None:
            return False
        self.add(h, bands)
        return True


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
        self._index: dict[str, HammingIndex] = {}

    def _hash(self, pixels: np.ndarray) -> np.ndarray:
        return phash_bits(pixels, self.cfg.dedup.phash_size, self.cfg.dedup.channels)

    def check(self, sample: Sample) -> str | None:
        assert sample.pixels is not None, "near-dup runs after decode"
        bits = self._hash(sample.analysis("image"))
        if sample.is_edit and sample.target_pixels is not None:
            bits = np.concatenate([bits, self._hash(sample.analysis("target"))])
        return self._verdict(sample, bits)

    def check_batch(self, samples: list[Sample]) -> list[str | None]:
        for s in samples:
            assert s.pixels is not None, "near-dup runs after decode"
        cfg = self.cfg.dedup
        bits = phash_bits_batch([s.analysis("image") for s in samples], cfg.phash_size, cfg.channels)
        pairs = [i for i, s in enumerate(samples) if s.is_edit and s.target_pixels is not None]
        targets = phash_bits_batch([samples[i].analysis("target") for i in pairs], cfg.phash_size,
                                   cfg.channels)
        for i, tb in zip(pairs, targets, strict=True):
            bits[i] = np.concatenate([bits[i], tb])
        return [self._verdict(s, b) for s, b in zip(samples, bits, strict=True)]

    def _verdict(self, sample: Sample, bits: np.ndarray) -> str | None:
        """Record the hash; a duplicate when a kept sample of the same kind is within the radius."""
        h = bits_to_int(bits)
        sample.hashes["phash"] = format(h, f"0{(len(bits) + 3) // 4}x")
        if not self.cfg.dedup.near:
            return None
        index = self._index.get(sample.kind)
        if index is None:
            index = self._index[sample.kind] = HammingIndex(len(bits), self.cfg.dedup.max_hamming)
        return None if index.add_unless_near(h) else "duplicate"
