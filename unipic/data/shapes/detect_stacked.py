"""The ShapesWorld detector over a stack of same-size images: the per-image detector's steps, fused.

`ShapesDetector.detect` (the reference: numpy + scipy, one image) makes ~50 array passes and a Python loop
over every component, which dominates on small canvases. Here two compiled kernels (numba, cached on disk) do
the pixel work: `_segment` (run on every image of a stack in one `_segment_stack` call) takes the border
median, then works on runs, not pixels: each run of equal pixels in a row gets its nearest reference colour
once (the same squared distances, ties to the lower index), consecutive runs of one colour label form a label
run, and a row equal to the one above (most rows of a render) repeats its runs without a look at its pixels;
label runs are joined into 8-connected components by union-find (numbered in raster order of their first
pixel, as `ndimage.label` numbers them), the background's squared error is summed in integers per run, and
each component is measured from its runs (area, box, interior after a 3x3 erosion as the overlap of a run with
the runs of its label above and below, whether that interior is exactly its palette colour)
in one pass; `_template_overlaps` counts each surviving component's overlap with the renderer's templates for
the whole batch. Only the real objects (a few per image) reach Python. `segment_stack` stops there: the
objects of a batch stack as one table (`StackedObjects`, what curation's agreement reads, one call per batch
for all images); `detect_stacked` turns that table into `Detection`s.

Every number comes from the same integers as in `detect` or from exact integer sums where those give the same
float (`_background_rms`); the few values that need `detect`'s float32 reductions (noisy objects, very noisy
backgrounds) are computed as `detect` does. tests/unit/test_shapes_detect_stacked.py checks that detections
are identical on clean, box-reduced, noisy and blotched images of every task.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np

from unipic.data.shapes.detect import (
    _COLOR_NAMES,
    _PALETTE,
    BACKGROUNDS,
    DetectedObject,
    Detection,
    _erode8,
    _size_class,
    _template,
)
from unipic.data.shapes.world import SHAPES

# Columns of `_segment`'s component table (`StackedObjects.table` adds the best shape's index, `SHAPE_COL`).
_IMG, _COLOR, _CID, _AREA, _Y0, _X0, _Y1, _X1, _CLEAN = range(9)
SHAPE_COL = 9
_BG_NAMES = tuple(BACKGROUNDS)
_BG_TABLE = np.array([BACKGROUNDS[n] for n in _BG_NAMES], dtype=np.float32)
_PALETTE_I = np.rint(_PALETTE).astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _find(parent: np.ndarray, a: int) -> int:
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@numba.njit(cache=True, nogil=True)
def _nearest(r: int, g: int, b: int, refs: np.ndarray) -> tuple[int, int]:
    """The nearest reference colour (squared distance, ties to the lower index) and that distance."""
    dr, dg, db = r - refs[0, 0], g - refs[0, 1], b - refs[0, 2]
    best = dr * dr + dg * dg + db * db
    lab = 0
    for k in range(1, refs.shape[0]):
        dr, dg, db = r - refs[k, 0], g - refs[k, 1], b - refs[k, 2]
        d = dr * dr + dg * dg + db * db
        if d < best:
            best = d
            lab = k
    return lab, best


@numba.njit(cache=True, nogil=True)
def _row_runs(img: np.ndarray, y: int, refs: np.ndarray, bg2: np.ndarray, labels: np.ndarray,
              runs: np.ndarray, nr: int, last: np.ndarray) -> tuple[int, int, int]:
    """Row y as runs: each run of equal pixels (most of a flat render) gets one nearest-reference verdict,
    its label is written into `labels`, and consecutive runs of the same non-background label become one label
    run in `runs` from row `nr` (start, end, label, whether some pixel is not exactly that label's colour).
    Returns the next free run row, the row's background pixel count and sum of (2 * pixel - 2 * background)^2
    (exact integers). `last` carries the previous verdict (code, label, distance, sq) across rows."""
    w = img.shape[1]
    n_bg = 0
    quarter = 0
    prev, lab, best, sq = last[0], last[1], last[2], last[3]
    open_run = -1  # the label run that ends where this colour run starts, if any
    x = 0
    while x < w:
        r, g, b = img[y, x, 0], img[y, x, 1], img[y, x, 2]
        code = (np.int64(r) << 16) | (np.int64(g) << 8) | np.int64(b)
        if code != prev:
            prev = code
            lab, best = _nearest(np.int64(r), np.int64(g), np.int64(b), refs)
            dr, dg, db = 2 * np.int64(r) - bg2[0], 2 * np.int64(g) - bg2[1], 2 * np.int64(b) - bg2[2]
            sq = dr * dr + dg * dg + db * db
        e = x + 1
        while e < w and img[y, e, 0] == r and img[y, e, 1] == g and img[y, e, 2] == b:
            e += 1
        labels[y, x:e] = lab
        if lab == 0:
            n_bg += e - x
            quarter += sq * (e - x)
            open_run = -1
        elif open_run >= 0 and runs[open_run, 2] == lab:
            runs[open_run, 1] = e
            if best != 0:
                runs[open_run, 3] = 1
        else:
            open_run = nr
            runs[nr, 0], runs[nr, 1], runs[nr, 2], runs[nr, 3] = x, e, lab, best != 0
            nr += 1
        x = e
    last[0], last[1], last[2], last[3] = prev, lab, best, sq
    return nr, n_bg, quarter


@numba.njit(cache=True, nogil=True)
def _same_row(words: np.ndarray, y: int) -> bool:
    """Row y equals row y - 1 (most rows of a flat render: background margins, straight edges); `words` is the
    image as (H, row bytes) in 8-byte words where the row's size allows, else in bytes."""
    diff = words[y, 0] ^ words[y - 1, 0]
    for j in range(1, words.shape[1]):  # no early exit: the loop vectorises
        diff |= words[y, j] ^ words[y - 1, j]
    return diff == 0


@numba.njit(cache=True, nogil=True)
def _repeat_row(runs: np.ndarray, a0: int, nr: int, parent: np.ndarray, labels: np.ndarray, y: int) -> int:
    """Row y equal to row y - 1 (label runs `runs[a0:nr]`): the same runs and labels, each run joined to its
    twin above and to nothing else (runs of one label in a row are at least a pixel apart, so a run touches no
    other run of its label in an equal row). Returns the next free run row."""
    for k in range(a0, nr):
        j = nr + k - a0
        runs[j, 0], runs[j, 1], runs[j, 2], runs[j, 3] = runs[k, 0], runs[k, 1], runs[k, 2], runs[k, 3]
        parent[j + 1] = k + 1
    labels[y, :] = labels[y - 1, :]
    return nr + nr - a0


@numba.njit(cache=True, nogil=True)
def _link_runs(runs: np.ndarray, a0: int, a1: int, b0: int, b1: int, parent: np.ndarray) -> None:
    """Union the label runs of a row (`runs[b0:b1]`) with the 8-connected runs of the same label in the row
    above (`runs[a0:a1]`); both sorted by start. Union-find keeps the smaller id (a run's index + 1) as the
    root, so a component's root is its first run in raster order, the run of its first pixel."""
    j = a0
    for k in range(b0, b1):
        s, e, lab = runs[k, 0], runs[k, 1], runs[k, 2]
        while j < a1 and runs[j, 1] < s:  # ends left of s - 1: touches neither this run nor a later one
            j += 1
        i = j
        while i < a1 and runs[i, 0] <= e:
            if runs[i, 2] == lab:
                ra, rb = _find(parent, i + 1), _find(parent, k + 1)
                if ra < rb:
                    parent[rb] = ra
                elif rb < ra:
                    parent[ra] = rb
            i += 1


@numba.njit(cache=True, nogil=True)
def _interior(img: np.ndarray, y: int, k: int, runs: np.ndarray, above: tuple[int, int],
              below: tuple[int, int], refs: np.ndarray) -> tuple[int, bool]:
    """Run k's interior pixels (all 8 neighbours share its label: its own run minus the ends, within a run of
    the same label minus the ends above and below) and whether each of them is exactly its label's colour."""
    s, e, lab = runs[k, 0] + 1, runs[k, 1] - 1, runs[k, 2]
    count = 0
    clean = True
    for i in range(above[0], above[1]):
        if runs[i, 0] + 1 >= e:
            break
        if runs[i, 2] != lab:
            continue
        lo, hi = max(s, runs[i, 0] + 1), min(e, runs[i, 1] - 1)
        if lo >= hi:
            continue
        for m in range(below[0], below[1]):
            if runs[m, 0] + 1 >= hi:
                break
            if runs[m, 2] != lab:
                continue
            a, b = max(lo, runs[m, 0] + 1), min(hi, runs[m, 1] - 1)
            if a >= b:
                continue
            count += b - a
            if runs[k, 3] and clean:
                for x in range(a, b):
                    if (img[y, x, 0] != refs[lab, 0] or img[y, x, 1] != refs[lab, 1]
                            or img[y, x, 2] != refs[lab, 2]):
                        clean = False
                        break
    return count, clean


@numba.njit(cache=True, nogil=True)
def _measure(img: np.ndarray, runs: np.ndarray, row_at: np.ndarray, parent: np.ndarray, remap: np.ndarray,
             refs: np.ndarray, comp: np.ndarray) -> np.ndarray:
    """Final component ids (1..n in raster order of first pixels, as `ndimage.label` numbers them) into
    `comp` (0 on the background), and per component (n + 1, 7): colour, area, y0, x0, y1, x1 (box, exclusive
    end) and its interior (pixels whose 8 neighbours all exist and share its colour: `_erode8` of its mask) as
    a count, negated when some interior pixel is not exactly its palette colour."""
    h = img.shape[0]
    n = 0
    for i in range(1, row_at[h] + 1):
        root = _find(parent, i)
        if root == i:
            n += 1
            remap[i] = n
        else:
            remap[i] = remap[root]
    st = np.zeros((n + 1, 7), np.int64)
    st[:, 2] = h
    st[:, 3] = img.shape[1]
    clean = np.ones(n + 1, np.bool_)
    comp[:, :] = 0
    for y in range(h):
        ja, jb = (row_at[y - 1], row_at[y + 1]) if 0 < y < h - 1 else (0, 0)
        for k in range(row_at[y], row_at[y + 1]):
            s, e = runs[k, 0], runs[k, 1]
            c = remap[k + 1]
            for x in range(s, e):
                comp[y, x] = c
            st[c, 0] = runs[k, 2]
            st[c, 1] += e - s
            st[c, 2] = min(st[c, 2], y)
            st[c, 3] = min(st[c, 3], s)
            st[c, 4] = max(st[c, 4], y + 1)
            st[c, 5] = max(st[c, 5], e)
            if 0 < y < h - 1 and e - s > 2:
                # runs above / below ending where this run's interior starts reach no later run's either
                while ja < row_at[y] and runs[ja, 1] - 1 <= s + 1:
                    ja += 1
                while jb < row_at[y + 2] and runs[jb, 1] - 1 <= s + 1:
                    jb += 1
                inner, ok = _interior(img, y, k, runs, (ja, row_at[y]), (jb, row_at[y + 2]), refs)
                st[c, 6] += inner
                if not ok:
                    clean[c] = False
    for c in range(1, n + 1):
        if not clean[c]:
            st[c, 6] = -st[c, 6]
    return st


@numba.njit(cache=True, nogil=True)
def _flat_border(img: np.ndarray) -> bool:
    """Every pixel of the 1-px border equals the top-left one."""
    h, w, _ = img.shape
    for c in range(3):
        v = img[0, 0, c]
        for x in range(w):
            if img[0, x, c] != v or img[h - 1, x, c] != v:
                return False
        for y in range(h):
            if img[y, 0, c] != v or img[y, w - 1, c] != v:
                return False
    return True


@numba.njit(cache=True, nogil=True)
def _border_median(img: np.ndarray, bg: np.ndarray) -> None:
    """`_background`: per channel the median of the 1-px border (corners twice; 2(H + W) values, so the mean
    of the two middle ones, exact in float32 for integers) into `bg`, read off a 256-bin histogram."""
    h, w, _ = img.shape
    if _flat_border(img):  # a render's border: the median of equal values is that value
        for c in range(3):
            bg[c] = np.float32(img[0, 0, c])
        return
    mid = h + w
    for c in range(3):
        hist = np.zeros(256, np.int64)
        for x in range(w):
            hist[img[0, x, c]] += 1
            hist[img[h - 1, x, c]] += 1
        for y in range(h):
            hist[img[y, 0, c]] += 1
            hist[img[y, w - 1, c]] += 1
        seen, lo, hi = 0, -1, -1
        for v in range(256):
            seen += hist[v]
            if lo < 0 and seen >= mid:
                lo = v
            if seen >= mid + 1:
                hi = v
                break
        bg[c] = np.float32(lo + hi) / np.float32(2.0)


@numba.njit(cache=True, nogil=True)
def _segment(img: np.ndarray, words: np.ndarray, palette: np.ndarray, min_area: int, i: int, bg: np.ndarray,
             labels: np.ndarray, comp: np.ndarray, runs: np.ndarray, row_at: np.ndarray, parent: np.ndarray,
             remap: np.ndarray, table: np.ndarray, m: int) -> tuple[int, int, int]:
    """One image: its background (into `bg`), reference labels, component ids, and the components that are
    objects (area >= min_area, non-empty interior) appended to `table` from row `m` (columns `_IMG`..`_CLEAN`,
    in component order). Returns the next free row, the background pixel count and its integer squared error.
    Labelling works on label runs (`_row_runs`), not pixels: a flat render has a few per row."""
    _border_median(img, bg)
    refs = np.empty((palette.shape[0] + 1, 3), np.int64)
    bg2 = np.empty(3, np.int64)
    for c in range(3):
        refs[0, c] = np.int64(np.rint(bg[c]))
        bg2[c] = np.int64(np.rint(np.float32(2.0) * bg[c]))
        for k in range(palette.shape[0]):
            refs[k + 1, c] = palette[k, c]
    last = np.full(4, -1, np.int64)
    n_bg = quarter = nr = row_bg = row_quarter = 0
    for y in range(img.shape[0]):
        row_at[y] = nr
        if y > 0 and _same_row(words, y):
            nr = _repeat_row(runs, row_at[y - 1], nr, parent, labels, y)
        else:
            nr, row_bg, row_quarter = _row_runs(img, y, refs, bg2, labels, runs, nr, last)
            for k in range(row_at[y], nr):
                parent[k + 1] = k + 1
            if y > 0:
                _link_runs(runs, row_at[y - 1], row_at[y], row_at[y], nr, parent)
        n_bg += row_bg
        quarter += row_quarter
    row_at[img.shape[0]] = nr
    st = _measure(img, runs, row_at, parent, remap, refs, comp)
    for c in range(1, st.shape[0]):
        if st[c, 1] >= min_area and st[c, 6] != 0:
            row = (i, st[c, 0], c, st[c, 1], st[c, 2], st[c, 3], st[c, 4], st[c, 5], 1 if st[c, 6] > 0 else 0)
            for col in range(9):
                table[m, col] = row[col]
            m += 1
    return m, n_bg, quarter


@numba.njit(cache=True, nogil=True)
def _template_overlaps(comp: np.ndarray, table: np.ndarray, tmpl: np.ndarray, offsets: np.ndarray,
                       n_shapes: int) -> np.ndarray:
    """(M, n_shapes) pixels each object's mask shares with each template of its box (flattened in `tmpl`
    from `offsets[j]`, shape by shape)."""
    out = np.zeros((table.shape[0], n_shapes), np.int64)
    for j in range(table.shape[0]):
        i, cid = table[j, _IMG], table[j, _CID]
        y0, x0, y1, x1 = table[j, _Y0], table[j, _X0], table[j, _Y1], table[j, _X1]
        bh, bw = y1 - y0, x1 - x0
        base = offsets[j]
        for yy in range(bh):
            for xx in range(bw):
                if comp[i, y0 + yy, x0 + xx] != cid:
                    continue
                at = base + yy * bw + xx
                for s in range(n_shapes):
                    if tmpl[at + s * bh * bw]:
                        out[j, s] += 1
    return out


@lru_cache(maxsize=4096)
def _templates(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Every shape's template in a width x height box, flattened one after the other, and their areas."""
    masks = [_template(shape, width, height) for shape in SHAPES]
    return (np.concatenate([m[0].ravel() for m in masks]).astype(np.uint8),
            np.array([m[1] for m in masks], dtype=np.int64))


def _background_names(bgs: np.ndarray) -> list[str]:
    """`_nearest_name(bg, BACKGROUNDS)` for every image at once (same float32 distances, same argmin)."""
    d = ((_BG_TABLE[None] - bgs[:, None, :]) ** 2).sum(2)
    return [_BG_NAMES[k] for k in np.argmin(d, axis=1).tolist()]


def _background_rms(imgs: np.ndarray, labels: np.ndarray, bgs: np.ndarray, n_bg: np.ndarray,
                    quarter: np.ndarray) -> list[float]:
    """`detect`'s background rms per image. Every term (pixel - background)^2 is a multiple of 1/4 (the
    background is a median of integers), so while 4 x the total stays below 2^24 every partial float32 sum in
    `detect` is exact, whatever its order, and the integer sum gives the same float (the same float32 steps as
    `detect`'s mean, elementwise); otherwise it is computed as there."""
    exact = (quarter < 1 << 24) & (np.rint(2 * bgs) == 2 * bgs).all(axis=1)
    mean = ((quarter / 4).astype(np.float32) / np.maximum(3 * n_bg, 1)).astype(np.float32)
    out = np.sqrt(mean).tolist()
    for i in np.flatnonzero(~exact | (n_bg == 0)).tolist():
        if n_bg[i] == 0:
            out[i] = 0.0
            continue
        bg_px = imgs[i][labels[i] == 0].astype(np.float32)
        out[i] = float(np.sqrt(((bg_px - bgs[i]) ** 2).mean()))
    return out


def _object_rms(img: np.ndarray, comp: np.ndarray, rows: list[list[int]]) -> float:
    """`detect`'s object rms over one image's objects (in its order: colour, then component). An object whose
    interior is exactly its palette colour has error 0.0 (all its interior pixels are equal)."""
    if all(r[_CLEAN] for r in rows):
        return 0.0
    errs = []
    for r in rows:
        if r[_CLEAN]:
            errs.append(np.float32(0.0))
            continue
        ys, xs = slice(r[_Y0], r[_Y1]), slice(r[_X0], r[_X1])
        interior = _erode8(comp[ys, xs] == r[_CID])
        px = img[ys, xs][interior].astype(np.float32)
        errs.append(((px - np.median(px, axis=0)) ** 2).mean())
    return float(np.sqrt(np.mean(errs)))


class _TemplatePool:
    """Every box size's templates (`_templates`) copied once into one growing buffer, so a batch's objects point
    into it (offsets) instead of concatenating their templates per batch (a few hundred kB of copies)."""

    def __init__(self) -> None:
        self.buf = np.empty(1 << 16, np.uint8)
        self.used = 0
        self.areas = np.empty((64, len(SHAPES)), np.int64)
        self._at: dict[tuple[int, int], tuple[int, int]] = {}  # (width, height) -> (offset in buf, row of areas)

    def lookup(self, widths: list[int], heights: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Per box, the offset of its templates in `buf` and its row of `areas` (adding new sizes)."""
        offsets = np.empty(len(widths), np.int64)
        rows = np.empty(len(widths), np.int64)
        at = self._at
        for j, key in enumerate(zip(widths, heights, strict=True)):
            hit = at.get(key)
            if hit is None:
                hit = at[key] = self._add(*key)
            offsets[j], rows[j] = hit
        return offsets, rows

    def _add(self, width: int, height: int) -> tuple[int, int]:
        flat, areas = _templates(width, height)
        if self.used + len(flat) > len(self.buf):
            grown = np.empty(max(2 * len(self.buf), self.used + len(flat)), np.uint8)
            grown[:self.used] = self.buf[:self.used]
            self.buf = grown
        if len(self._at) >= len(self.areas):
            self.areas = np.concatenate([self.areas, np.empty_like(self.areas)])
        offset, row = self.used, len(self._at)
        self.buf[offset:offset + len(flat)] = flat
        self.areas[row] = areas
        self.used += len(flat)
        return offset, row


def _template_pool() -> _TemplatePool:
    pool = _SCRATCH.__dict__.get("templates")
    if pool is None:
        pool = _SCRATCH.__dict__["templates"] = _TemplatePool()
    return pool


def _shape_matches(comp: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per object, `_best_shape`: the template with the highest IoU (first on ties) and that IoU."""
    if not len(table):
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    pool = _template_pool()
    offsets, rows = pool.lookup((table[:, _X1] - table[:, _X0]).tolist(), (table[:, _Y1] - table[:, _Y0]).tolist())
    inter = _template_overlaps(comp, table, pool.buf, offsets, len(SHAPES))
    areas = pool.areas[rows]
    iou = inter / (table[:, _AREA, None] + areas - inter).astype(np.float64)
    best = np.argmax(iou, axis=1)
    return best, iou[np.arange(len(best)), best]


@numba.njit(cache=True, nogil=True)
def _segment_stack(stack: np.ndarray, words: np.ndarray, rows: np.ndarray, palette: np.ndarray, min_area: int,
                   bgs: np.ndarray, labels: np.ndarray, comp: np.ndarray, runs: np.ndarray, row_at: np.ndarray,
                   parent: np.ndarray, remap: np.ndarray, table: np.ndarray, n_bg: np.ndarray,
                   quarter: np.ndarray) -> int:
    """`_segment` of every image `stack[rows[i]]` (as image i; `words`: the stack's rows as words, see
    `_same_row`), in one call; returns the table's row count."""
    m = 0
    for i in range(rows.shape[0]):
        m, bg_count, bg_error = _segment(stack[rows[i]], words[rows[i]], palette, min_area, i, bgs[i], labels[i],
                                         comp[i], runs, row_at, parent, remap, table, m)
        n_bg[i] = bg_count
        quarter[i] = bg_error
    return m


@dataclass
class StackedObjects:
    """The objects of `stack[rows]` as arrays, in `detect`'s order (image, then box top, then left, then
    colour and component): one row per object, image `i`'s objects at `starts[i]:starts[i + 1]`. `table` has
    the `_segment` columns plus the best shape's index in `SHAPES`; the rest is what a full `Detection` needs
    (`labels` and `comp` are scratch arrays, reused by the next call in the thread once released)."""

    table: np.ndarray
    ious: np.ndarray
    starts: np.ndarray
    order: np.ndarray  # per object row, its rank in `detect`'s pre-sort order (colour, component)
    bgs: np.ndarray
    n_bg: np.ndarray
    quarter: np.ndarray
    labels: np.ndarray
    comp: np.ndarray


_SCRATCH = threading.local()
# `sys.getrefcount` of a buffer no one else holds, inside `scratch_array`: the cache, the local name, the argument.
_FREE_REFS = 3


def scratch_array(name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """An uninitialised array reused from the last call with this name in this thread (a fresh megabyte-sized
    array per batch costs more in page faults than the kernel that fills it), unless something still holds
    the last one: then a new one."""
    bufs = _SCRATCH.__dict__.setdefault("bufs", {})
    size = int(np.prod(shape))
    buf = bufs.get(name)
    if buf is None or buf.dtype != dtype or buf.size < size or sys.getrefcount(buf) > _FREE_REFS:
        buf = bufs[name] = np.empty(max(size, 1), dtype=dtype)
    return buf[:size].reshape(shape)


def segment_stack(stack: np.ndarray, rows: np.ndarray, min_area: int) -> StackedObjects:
    """The objects of the same-size (H, W, 3) uint8 images `stack[rows]`: two compiled calls for the batch
    (segmentation, template overlaps), no Python object per image."""
    n = len(rows)
    h, w = stack.shape[1:3]
    labels = scratch_array("labels", (n, h, w), np.int8)
    comp = scratch_array("comp", (n, h, w), np.int32)
    parent = np.empty(h * w + 1, np.int64)
    remap = np.zeros(h * w + 1, np.int32)
    table = scratch_array("table", (n * (h * w // min_area + 1), 9), np.int64)
    bgs = np.empty((n, 3), np.float32)
    n_bg = np.empty(n, np.int64)
    quarter = np.empty(n, np.int64)
    runs = scratch_array("runs", (h * w, 4), np.int64)
    stack = np.ascontiguousarray(stack)
    words = stack.reshape(len(stack), h, w * 3)
    if (w * 3) % 8 == 0:
        words = words.view(np.uint64)
    m = _segment_stack(stack, words, np.asarray(rows, dtype=np.int64), _PALETTE_I, min_area, bgs, labels, comp,
                       runs, np.empty(h + 1, np.int64), parent, remap, table, n_bg, quarter)
    table = table[:m]
    shapes, ious = _shape_matches(comp, table)
    # `detect` appends objects by colour, then component, and sorts them (stably) by box top, then left.
    table = np.column_stack([table, shapes]) if m else np.zeros((0, 10), np.int64)
    found = np.lexsort((table[:, _CID], table[:, _COLOR], table[:, _IMG]))
    table, ious = table[found], ious[found]
    rank = np.arange(m)
    final = np.lexsort((rank, table[:, _X0], table[:, _Y0], table[:, _IMG]))
    starts = np.searchsorted(table[final, _IMG], np.arange(n + 1))
    return StackedObjects(table[final], ious[final], starts, rank[final], bgs, n_bg, quarter, labels, comp)


def detect_stacked(imgs: np.ndarray | list[np.ndarray], min_area: int) -> list[Detection]:
    """Detections for same-size (H, W, 3) uint8 images (a stack, or a list: stacked here); `min_area` is the
    detector's speck limit here."""
    stack = imgs if isinstance(imgs, np.ndarray) else np.stack(imgs)
    n = len(stack)
    h, w = stack.shape[1:3]
    canvas = min(h, w)
    seg = segment_stack(stack, np.arange(n), min_area)
    rows, ious, starts = seg.table.tolist(), seg.ious.tolist(), seg.starts.tolist()
    names, bg_list = _background_names(seg.bgs), seg.bgs.tolist()
    bg_rms = _background_rms(stack, seg.labels, seg.bgs, seg.n_bg, seg.quarter)
    out = []
    for i in range(n):
        mine = range(starts[i], starts[i + 1])
        objects = [_object(rows[j], ious[j], canvas) for j in mine]
        in_order = [rows[j] for j in sorted(mine, key=seg.order.__getitem__)]
        out.append(Detection(
            size=(h, w), background=names[i], background_rgb=tuple(bg_list[i]), objects=objects,
            background_rms=bg_rms[i], object_rms=_object_rms(stack[i], seg.comp[i], in_order),
        ))
    return out


def _object(row: list[int], iou: float, canvas: int) -> DetectedObject:
    """`component_object`'s object from a component-table row (with its best shape appended)."""
    x0, y0, x1, y1, area = row[_X0], row[_Y0], row[_X1], row[_Y1], row[_AREA]
    bw, bh = x1 - x0, y1 - y0
    return DetectedObject(
        shape=SHAPES[row[SHAPE_COL]], color=_COLOR_NAMES[row[_COLOR] - 1], size=_size_class(max(bw, bh), canvas),
        bbox=(x0, y0, x1, y1), center=((x0 + x1) / 2.0, (y0 + y1) / 2.0), area=area,
        fill_ratio=float(area) / float(bw * bh), match=iou,
    )


def object_boxes(rows: np.ndarray | list[list[int]]) -> list[tuple[int, int, int, int]]:
    """The boxes (x0, y0, x1, y1) of object-table rows, as `DetectedObject.bbox` holds them."""
    rows = rows.tolist() if isinstance(rows, np.ndarray) else rows
    return [(r[_X0], r[_Y0], r[_X1], r[_Y1]) for r in rows]
