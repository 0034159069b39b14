"""The ShapesWorld detector over a stack of same-size images: the per-image detector's steps, fused.

`ShapesDetector.detect` (the reference: numpy + scipy, one image) makes ~50 array passes and a Python loop
over every component, which dominates on small canvases. Here two compiled kernels (numba, cached on disk) do
the pixel work: `_segment` (run on every image of a stack in one `_segment_stack` call) takes the border
median, assigns each pixel its nearest reference colour (the same squared distances, ties to the lower index)
while labelling 8-connected same-colour components by union-find row by row (numbered in raster order of their
first pixel, as `ndimage.label` numbers them), sums the background's squared error in integers, then measures
each component (area, box, interior after a 3x3 erosion, whether that interior is exactly its palette colour)
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
def _assign_row(img: np.ndarray, y: int, refs: np.ndarray, bg2: np.ndarray, labels: np.ndarray,
                matched: np.ndarray, last: np.ndarray) -> tuple[int, int]:
    """Row y: nearest reference per pixel (into `labels`), exact-colour mask (into `matched`); returns the
    row's background pixel count and sum of (2 * pixel - 2 * background)^2 (integers, exact). A pixel equal to
    the one before it (most of a flat render) reuses its verdict, kept in `last` (code, label, distance, sq)."""
    n_bg = 0
    quarter = 0
    prev, lab, best, sq = last[0], last[1], last[2], last[3]
    for x in range(img.shape[1]):
        r, g, b = np.int64(img[y, x, 0]), np.int64(img[y, x, 1]), np.int64(img[y, x, 2])
        code = (r << 16) | (g << 8) | b
        if code != prev:
            prev = code
            dr, dg, db = r - refs[0, 0], g - refs[0, 1], b - refs[0, 2]
            best = dr * dr + dg * dg + db * db
            lab = 0
            for k in range(1, refs.shape[0]):
                dr, dg, db = r - refs[k, 0], g - refs[k, 1], b - refs[k, 2]
                d = dr * dr + dg * dg + db * db
                if d < best:
                    best = d
                    lab = k
            dr, dg, db = 2 * r - bg2[0], 2 * g - bg2[1], 2 * b - bg2[2]
            sq = dr * dr + dg * dg + db * db
        labels[y, x] = lab
        matched[y, x] = best == 0
        if lab == 0:
            n_bg += 1
            quarter += sq
    last[0], last[1], last[2], last[3] = prev, lab, best, sq
    return n_bg, quarter


@numba.njit(cache=True, nogil=True)
def _label_row(labels: np.ndarray, comp: np.ndarray, parent: np.ndarray, y: int, nid: int) -> int:
    """Row y of 8-connected components of equal non-zero labels: provisional ids into `comp`, merges in
    `parent` (union-find keeping the smaller id as root, so a component's root is the id of its first pixel in
    raster order). Returns the number of provisional ids so far."""
    w = labels.shape[1]
    for x in range(w):
        lab = labels[y, x]
        if lab == 0:
            comp[y, x] = 0
            continue
        if y > 0 and labels[y - 1, x] == lab:  # the other earlier neighbours touch it: joined to it already
            comp[y, x] = comp[y - 1, x]
            continue
        cur = 0
        if x > 0 and labels[y, x - 1] == lab:
            cur = comp[y, x - 1]
        elif y > 0 and x > 0 and labels[y - 1, x - 1] == lab:
            cur = comp[y - 1, x - 1]
        if y > 0 and x + 1 < w and labels[y - 1, x + 1] == lab:
            other = comp[y - 1, x + 1]
            if cur == 0:
                cur = other
            else:
                ra, rb = _find(parent, cur), _find(parent, other)
                if ra < rb:
                    parent[rb] = ra
                elif rb < ra:
                    parent[ra] = rb
        if cur == 0:
            nid += 1
            parent[nid] = nid
            cur = nid
        comp[y, x] = cur
    return nid


@numba.njit(cache=True, nogil=True)
def _measure(labels: np.ndarray, matched: np.ndarray, comp: np.ndarray, parent: np.ndarray, remap: np.ndarray,
             nid: int) -> np.ndarray:
    """Final component ids (1..n in raster order of first pixels, as `ndimage.label` numbers them) into
    `comp`, and per component (n + 1, 7): colour, area, y0, x0, y1, x1 (box, exclusive end) and its interior
    (pixels whose 8 neighbours all exist and share its colour: `_erode8` of its mask) as a count, negated
    when some interior pixel is not exactly its palette colour."""
    n = 0
    for i in range(1, nid + 1):
        root = _find(parent, i)
        if root == i:
            n += 1
            remap[i] = n
        else:
            remap[i] = remap[root]
    h, w = labels.shape
    st = np.zeros((n + 1, 7), np.int64)
    st[:, 2] = h
    st[:, 3] = w
    clean = np.ones(n + 1, np.bool_)
    for y in range(h):
        for x in range(w):
            if comp[y, x] == 0:
                continue
            c = remap[comp[y, x]]
            comp[y, x] = c
            lab = labels[y, x]
            st[c, 0] = lab
            st[c, 1] += 1
            st[c, 2] = min(st[c, 2], y)
            st[c, 3] = min(st[c, 3], x)
            st[c, 4] = max(st[c, 4], y + 1)
            st[c, 5] = max(st[c, 5], x + 1)
            if (0 < y < h - 1 and 0 < x < w - 1 and labels[y, x - 1] == lab and labels[y, x + 1] == lab
                    and labels[y - 1, x] == lab and labels[y + 1, x] == lab and labels[y - 1, x - 1] == lab
                    and labels[y - 1, x + 1] == lab and labels[y + 1, x - 1] == lab and labels[y + 1, x + 1] == lab):
                st[c, 6] += 1
                if not matched[y, x]:
                    clean[c] = False
    for c in range(1, n + 1):
        if not clean[c]:
            st[c, 6] = -st[c, 6]
    return st


@numba.njit(cache=True, nogil=True)
def _border_median(img: np.ndarray, bg: np.ndarray) -> None:
    """`_background`: per channel the median of the 1-px border (corners twice; 2(H + W) values, so the mean
    of the two middle ones, exact in float32 for integers) into `bg`, read off a 256-bin histogram."""
    h, w, _ = img.shape
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
def _segment(img: np.ndarray, palette: np.ndarray, min_area: int, i: int, bg: np.ndarray, labels: np.ndarray,
             comp: np.ndarray, matched: np.ndarray, parent: np.ndarray, remap: np.ndarray, table: np.ndarray,
             m: int) -> tuple[int, int, int]:
    """One image: its background (into `bg`), reference labels, component ids, and the components that are
    objects (area >= min_area, non-empty interior) appended to `table` from row `m` (columns `_IMG`..`_CLEAN`,
    in component order). Returns the next free row, the background pixel count and its integer squared error."""
    _border_median(img, bg)
    refs = np.empty((palette.shape[0] + 1, 3), np.int64)
    bg2 = np.empty(3, np.int64)
    for c in range(3):
        refs[0, c] = np.int64(np.rint(bg[c]))
        bg2[c] = np.int64(np.rint(np.float32(2.0) * bg[c]))
        for k in range(palette.shape[0]):
            refs[k + 1, c] = palette[k, c]
    last = np.full(4, -1, np.int64)
    n_bg = quarter = nid = 0
    for y in range(img.shape[0]):
        row_bg, row_quarter = _assign_row(img, y, refs, bg2, labels, matched, last)
        n_bg += row_bg
        quarter += row_quarter
        nid = _label_row(labels, comp, parent, y, nid)
    st = _measure(labels, matched, comp, parent, remap, nid)
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
def _segment_stack(stack: np.ndarray, rows: np.ndarray, palette: np.ndarray, min_area: int, bgs: np.ndarray,
                   labels: np.ndarray, comp: np.ndarray, matched: np.ndarray, parent: np.ndarray, remap: np.ndarray,
                   table: np.ndarray, n_bg: np.ndarray, quarter: np.ndarray) -> int:
    """`_segment` of every image `stack[rows[i]]` (as image i), in one call; returns the table's row count."""
    m = 0
    for i in range(rows.shape[0]):
        m, bg_count, bg_error = _segment(stack[rows[i]], palette, min_area, i, bgs[i], labels[i], comp[i],
                                         matched, parent, remap, table, m)
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
    m = _segment_stack(np.ascontiguousarray(stack), np.asarray(rows, dtype=np.int64), _PALETTE_I, min_area, bgs,
                       labels, comp, np.empty((h, w), np.bool_), parent, remap, table, n_bg, quarter)
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
