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
    side = size * 4
    im = Image.fromarray(analysis_view(pixels))
    small = np.asarray(im.resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32)
    if small.ndim == 2:
        small = small[..., None]
    small = small[..., :3]
    if channels == "luma" and small.shape[-1] == 3:
        small = (small @ _LUMA)[..., None]
    d = _DCT.get((side, size))
    if d is None:
        d = _DCT[(side, size)] = _dct_rows(side, size)
    coef = (d @ np.ascontiguousarray(small.transpose(2, 0, 1)) @ d.T).reshape(small.shape[-1], -1).T
    srt = np.sort(coef, axis=0)
    mid = coef.shape[0] // 2
    med = (srt[mid - 1] + srt[mid]) / 2 if coef.shape[0] % 2 == 0 else srt[mid]
    return (coef > med + PHASH_MARGIN).T.reshape(-1)


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
