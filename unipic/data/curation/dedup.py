"""Exact dedup (content hash) and near-dup removal (perceptual hash within a Hamming radius).

The perceptual hash is the classic DCT pHash, optionally per RGB channel: ShapesWorld's flat colours make
a red and a blue circle at the same place identical in luminance, and those are different samples.
Near-duplicate lookup is multi-index hashing: split the hash into max_hamming+1 bands; by the pigeonhole
principle two hashes within the radius share at least one band exactly, so only those are compared.
For edit triplets both keys are on the pair (source + target).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

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
    im = Image.fromarray(analysis_view(pixels))
    small = np.asarray(im.resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32)
    if small.ndim == 2:
        small = small[..., None]
    small = small[..., :3]
    if channels == "luma" and small.shape[-1] == 3:
        small = (small @ _LUMA)[..., None]
    return small


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

    def near(self, h: int) -> int | None:
        for table, v in zip(self._tables, self._band_values(h), strict=True):
            for other in table.get(v, ()):
                if (h ^ other).bit_count() <= self.radius:
                    return other
        return None

    def add(self, h: int) -> None:
        for table, v in zip(self._tables, self._band_values(h), strict=True):
            table[v].append(h)


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
        if index.near(h) is not None:
            return "duplicate"
        index.add(h)
        return None
