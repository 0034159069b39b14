"""Near-duplicate search over kept hashes: multi-index hashing, compiled, a batch per call.

Split an n-bit hash into radius+1 bands; by the pigeonhole principle two hashes within the radius share at
least one band exactly, so only hashes sharing a band are compared. Each band has an open-addressing table from
its bits (folded into 64; a collision only adds a candidate) to a chain of kept rows; candidates are compared
in full (XOR + popcount over 64-bit words). A batch goes through in order, each kept hash added before the next
is looked up, so the verdicts are those of one hash at a time: a hash is a duplicate exactly when some earlier
kept hash is within the radius.
"""

from __future__ import annotations

import numba
import numpy as np

_EMPTY = -1
_MIX = np.uint64(0x9E3779B97F4A7C15)


@numba.njit(cache=True, nogil=True)
def _popcount(x: np.uint64) -> int:
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return int((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@numba.njit(cache=True, nogil=True)
def _slot(keys: np.ndarray, heads: np.ndarray, key: np.uint64) -> int:
    """The slot of `key` in one band's table (linear probing): where it is, or the empty slot it would take."""
    mask = keys.shape[0] - 1
    at = int((key * _MIX) >> np.uint64(32)) & mask
    while heads[at] != _EMPTY and keys[at] != key:
        at = (at + 1) & mask
    return at


@numba.njit(cache=True, nogil=True)
def _insert(keys: np.ndarray, heads: np.ndarray, chain: np.ndarray, bands: np.ndarray, row: int) -> None:
    for b in range(bands.shape[0]):
        at = _slot(keys[b], heads[b], bands[b])
        keys[b, at] = bands[b]
        chain[b, row] = heads[b, at]
        heads[b, at] = row


@numba.njit(cache=True, nogil=True)
def _add_unless_near(words: np.ndarray, bands: np.ndarray, n: int, keys: np.ndarray, heads: np.ndarray,
                     chain: np.ndarray, seen: np.ndarray, stamp: int, query_words: np.ndarray,
                     query_bands: np.ndarray, radius: int, kept: np.ndarray) -> int:
    """Each query in order: kept (stored as row n, n + 1, ...) unless a kept row is within `radius`; a row met
    in several bands is compared once (`seen` holds the query's stamp, stamp + q). Returns the new n."""
    for q in range(query_words.shape[0]):
        mark = stamp + q
        dup = False
        for b in range(query_bands.shape[1]):
            at = _slot(keys[b], heads[b], query_bands[q, b])
            row = heads[b, at]
            while row != _EMPTY and not dup:
                if seen[row] != mark:
                    seen[row] = mark
                    dist = 0
                    for k in range(words.shape[1]):
                        dist += _popcount(words[row, k] ^ query_words[q, k])
                    dup = dist <= radius
                row = chain[b, row]
            if dup:
                break
        kept[q] = not dup
        if not dup:
            words[n] = query_words[q]
            bands[n] = query_bands[q]
            _insert(keys, heads, chain, query_bands[q], n)
            n += 1
    return n


@numba.njit(cache=True, nogil=True)
def _reinsert(keys: np.ndarray, heads: np.ndarray, chain: np.ndarray, bands: np.ndarray, n: int) -> None:
    for row in range(n):
        _insert(keys, heads, chain, bands[row], row)


class HammingIndex:
    """Kept hashes of one length; `add_unless_near(bits)` keeps each hash with no kept hash within `radius`."""

    def __init__(self, n_bits: int, radius: int) -> None:
        self.n_bits = n_bits
        self.radius = radius
        n_bands = min(radius + 1, n_bits)
        self._edges = np.linspace(0, n_bits, n_bands + 1).astype(int).tolist()
        self._n_words = (n_bits + 63) // 64
        self.n = 0
        self._stamp = 1
        self._words = np.zeros((0, self._n_words), dtype=np.uint64)
        self._bands = np.zeros((0, n_bands), dtype=np.uint64)
        self._alloc(1024)

    def _alloc(self, rows: int) -> None:
        """Room for `rows` kept hashes (band tables at most half full); the kept ones are re-inserted."""
        n_bands = len(self._edges) - 1
        slots = 1 << max(4, (2 * rows - 1).bit_length())
        words = np.zeros((rows, self._n_words), dtype=np.uint64)
        bands = np.zeros((rows, n_bands), dtype=np.uint64)
        words[:self.n], bands[:self.n] = self._words[:self.n], self._bands[:self.n]
        self._words, self._bands = words, bands
        self._keys = np.zeros((n_bands, slots), dtype=np.uint64)
        self._heads = np.full((n_bands, slots), _EMPTY, dtype=np.int64)
        self._chain = np.full((n_bands, rows), _EMPTY, dtype=np.int64)
        self._seen = np.zeros(rows, dtype=np.int64)
        _reinsert(self._keys, self._heads, self._chain, self._bands, self.n)

    def add_unless_near(self, bits: np.ndarray) -> np.ndarray:
        """(N, n_bits) bool hashes, in order -> (N,) True where kept (no earlier kept hash within the radius)."""
        bits = np.asarray(bits, dtype=bool).reshape(-1, self.n_bits)
        if self.n + len(bits) > len(self._words):
            self._alloc(max(2 * len(self._words), self.n + len(bits)))
        kept = np.empty(len(bits), dtype=np.bool_)
        words, bands = self._pack(bits)
        self.n = _add_unless_near(self._words, self._bands, self.n, self._keys, self._heads, self._chain,
                                  self._seen, self._stamp, words, bands, self.radius, kept)
        self._stamp += len(bits)
        return kept

    def _words_of(self, bits: np.ndarray) -> np.ndarray:
        """Bits packed into 64-bit words, first bit most significant, zero padded (same padding for all)."""
        return self._pack(bits)[0]

    def _bands_of(self, bits: np.ndarray) -> np.ndarray:
        """(N, bands) uint64 keys: each band's bits, folded by rotate-and-xor where a band passes 64 bits."""
        return self._pack(bits)[1]

    def _pack(self, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`_words_of` and `_bands_of` in one compiled pass over the bits."""
        words = np.empty((len(bits), self._n_words), dtype=np.uint64)
        bands = np.empty((len(bits), len(self._edges) - 1), dtype=np.uint64)
        _pack_bits(np.ascontiguousarray(bits, dtype=np.bool_), np.asarray(self._edges, dtype=np.int64), words, bands)
        return words, bands


@numba.njit(cache=True, nogil=True)
def _pack_bits(bits: np.ndarray, edges: np.ndarray, words: np.ndarray, bands: np.ndarray) -> None:
    """Per hash: its bits as 64-bit words, first bit most significant, zero padded; and per band [edges[b],
    edges[b + 1]) the band's bits in 64-bit chunks (first bit most significant), each chunk xor-ed into the
    running key after rotating it left by one."""
    n_bits = bits.shape[1]
    one = np.uint64(1)
    for q in range(bits.shape[0]):
        for k in range(words.shape[1]):
            v = np.uint64(0)
            for i in range(64 * k, 64 * k + 64):
                v = (v << one) | np.uint64(1 if i < n_bits and bits[q, i] else 0)
            words[q, k] = v
        for b in range(edges.shape[0] - 1):
            key = np.uint64(0)
            for start in range(edges[b], edges[b + 1], 64):
                value = np.uint64(0)
                for i in range(start, min(start + 64, edges[b + 1])):
                    value = (value << one) | np.uint64(1 if bits[q, i] else 0)
                key = ((key << one) | (key >> np.uint64(63))) ^ value
            bands[q, b] = key
