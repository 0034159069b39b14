"""The ShapesWorld detector over a stack of same-size images: the per-image detector's steps, batched.

`ShapesDetector.detect` pays a fixed Python cost per image (a `label` call per colour, a loop over every
component, speck or not) that dominates on small canvases. Here the whole stack goes through each step at
once: the border medians in one call; palette assignment by exact colour codes (squared distances only for
pixels that are no reference colour); per colour one `ndimage.label` over the images that contain it, with a
structure that never connects across the batch axis, areas by one `bincount`, boxes by one `find_objects`
over the surviving components. Only those (the real objects, a few per image) reach Python. Every number
comes from the same operations on the same values as in `detect`, or from exact integer sums where those give
the same float (`_background_rms`), so detections are identical: tests/unit/test_shapes_detect_stacked.py
checks it on clean, box-reduced, noisy and blotched images of every task.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from unipic.data.shapes.detect import (
    _COLOR_NAMES,
    _PALETTE,
    BACKGROUNDS,
    DetectedObject,
    Detection,
    _nearest_name,
    component_object,
)

# 8-connectivity inside each image, none between images.
_EIGHT_IN_PLANE = np.zeros((3, 3, 3), dtype=bool)
_EIGHT_IN_PLANE[1] = True
# Pixels that are no exact reference colour: owner image, (r, g, b) int32 channels, nearest reference.
_Rest = tuple[np.ndarray, list[np.ndarray], np.ndarray]


def _backgrounds(imgs: np.ndarray) -> np.ndarray:
    """(N, 3) median of each image's 1-px border, in the per-image border order."""
    border = np.concatenate([imgs[:, 0], imgs[:, -1], imgs[:, :, 0], imgs[:, :, -1]], axis=1)
    return np.median(border.astype(np.float32), axis=1)


def _nearest_labels(imgs: np.ndarray, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray, _Rest | None]:
    """(N, H, W) index of the nearest of each image's references (N, K, 3), ties to the lower index; the mask
    of pixels that are exactly their reference colour; and the other pixels (owner image, channels, label).

    Exact pixels (all of a clean render) are settled by comparing packed 24-bit colours, lowest index last so
    it wins a tie; only the others (noise, blurred or box-reduced edges) pay `detect`'s squared distances."""
    refs_i = np.rint(refs).astype(np.int32)
    x = imgs.astype(np.int32)
    code = (x[..., 0] << 16) | (x[..., 1] << 8) | x[..., 2]
    ref_code = (refs_i[..., 0] << 16) | (refs_i[..., 1] << 8) | refs_i[..., 2]
    labels = np.full(imgs.shape[:3], -1, dtype=np.int8)
    for k in range(refs_i.shape[1] - 1, -1, -1):
        np.copyto(labels, np.int8(k), where=code == ref_code[:, k, None, None])
    matched = labels >= 0
    rest = ~matched
    n_rest = np.count_nonzero(rest)
    if n_rest > rest.size // 4:  # mostly noise: per-pixel gathers would cost more than dense distances
        rough = np.flatnonzero(rest.any(axis=(1, 2)))
        labels[rough] = _dense_nearest(x[rough], refs_i[rough])
        return labels, matched, None
    owner = np.nonzero(rest)[0]
    channels = [x[..., c][rest] for c in range(3)]
    rest_labels = _nearest_by_distance(channels, refs_i[owner, 0], refs_i[0, 1:])
    labels[rest] = rest_labels
    return labels, matched, (owner, channels, rest_labels)


def _dense_nearest(x: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """`detect`'s squared-distance assignment over whole (N, H, W, 3) int32 images, references (N, K, 3)."""
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    refs = refs[:, :, None, None, :]
    labels = np.zeros(x.shape[:3], dtype=np.int8)
    best = (r - refs[:, 0, ..., 0]) ** 2 + (g - refs[:, 0, ..., 1]) ** 2 + (b - refs[:, 0, ..., 2]) ** 2
    for k in range(1, refs.shape[1]):
        ref = refs[:, k]
        d = (r - ref[..., 0]) ** 2 + (g - ref[..., 1]) ** 2 + (b - ref[..., 2]) ** 2
        closer = d < best
        np.minimum(d, best, out=best)
        labels[closer] = k
    return labels


def _nearest_by_distance(px: list[np.ndarray], bg: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """`detect`'s squared-distance assignment for the M pixels left, given as three (M,) channel arrays: each
    pixel's own background (M, 3) is reference 0, the shared palette (K, 3) references 1..K; ties keep the
    lower index."""
    r, g, b = px
    best = (r - bg[:, 0]) ** 2 + (g - bg[:, 1]) ** 2 + (b - bg[:, 2]) ** 2
    labels = np.zeros(len(r), dtype=np.int8)
    for k, (rr, gg, bb) in enumerate(palette.tolist(), start=1):
        d = (r - rr) ** 2 + (g - gg) ** 2 + (b - bb) ** 2
        closer = d < best
        np.minimum(d, best, out=best)
        labels[closer] = k
    return labels


def _objects(labels: np.ndarray, canvas: int, min_area: int
             ) -> list[list[tuple[DetectedObject, tuple[slice, slice], np.ndarray]]]:
    """Per image, its objects with box and interior, in the per-image detector's order (colour, then label).
    Each colour is labelled only in the images that contain it (a clean render holds few of the colours)."""
    found: list[list[tuple[DetectedObject, tuple[slice, slice], np.ndarray]]] = [[] for _ in labels]
    for k, color in enumerate(_COLOR_NAMES, start=1):
        mask = labels == k
        present = np.flatnonzero(mask.any(axis=(1, 2)))
        if not present.size:
            continue
        if present.size < len(mask):
            mask = mask[present]
        comp, n = ndimage.label(mask, structure=_EIGHT_IN_PLANE)
        areas = np.bincount(comp.ravel(), minlength=n + 1)
        big = np.flatnonzero(areas[1:] >= min_area) + 1
        if not big.size:
            continue
        if big.size < n:  # boxes of the objects only: find_objects is slow over thousands of specks
            keep = np.zeros(n + 1, dtype=comp.dtype)
            keep[big] = np.arange(1, big.size + 1)
            boxes = ndimage.find_objects(keep[comp])
        else:
            boxes = ndimage.find_objects(comp)
        for idx, (bs, ys, xs) in zip(big.tolist(), boxes, strict=True):
            sub = comp[bs.start, ys, xs] == idx
            got = component_object(sub, (ys, xs), int(areas[idx]), color, canvas)
            if got is not None:
                found[int(present[bs.start])].append((got[0], (ys, xs), got[1]))
    return found


def _background_rms(labels: np.ndarray, bgs: np.ndarray, rest: _Rest | None) -> list[float | None]:
    """Per image, `detect`'s background rms from exact integer sums, or None where its float32 sum might have
    rounded or the pixels were not gathered (noisy images; the caller then computes it as `detect` does).

    Every term (pixel - background)^2 is a multiple of 1/4 (the background is a median of integers), so
    while 4 x the total stays below 2^24 every partial float32 sum in `detect` is exact, whatever its order.
    Pixels that are exactly the (rounded) background contribute a constant; only the others are summed."""
    n = len(labels)
    if rest is None:
        return [None] * n
    bg2 = np.rint(2 * bgs).astype(np.int64)
    n_bg = np.count_nonzero(labels == 0, axis=(1, 2))
    quarter_sum = np.zeros(n, dtype=np.int64)
    n_rest = np.zeros(n, dtype=np.int64)
    owner, channels, rest_labels = rest
    if owner.size:
        sel = rest_labels == 0
        o = owner[sel]
        sq = sum((2 * ch[sel].astype(np.int64) - bg2[o, c]) ** 2 for c, ch in enumerate(channels))
        quarter_sum += np.rint(np.bincount(o, weights=sq, minlength=n)).astype(np.int64)
        n_rest = np.bincount(o, minlength=n)
    quarter_sum += (n_bg - n_rest) * ((2 * np.rint(bgs).astype(np.int64) - bg2) ** 2).sum(axis=1)
    exact_bg = (bg2 == 2 * bgs).all(axis=1)
    out: list[float | None] = []
    for i in range(n):
        if n_bg[i] == 0:
            out.append(0.0)
        elif exact_bg[i] and quarter_sum[i] < 1 << 24:
            out.append(float(np.sqrt(np.float32(np.float32(quarter_sum[i] / 4) / np.intp(3 * n_bg[i])))))
        else:
            out.append(None)
    return out


def _rms(img: np.ndarray, labels: np.ndarray, matched: np.ndarray, bg: np.ndarray, bg_rms: float | None,
         parts: list[tuple[DetectedObject, tuple[slice, slice], np.ndarray]]) -> tuple[float, float]:
    """Background and object rms exactly as `detect` computes them (same values, same order, same dtype).
    An object whose interior is exactly its palette colour has error 0.0 without computing it."""
    if bg_rms is None:
        bg_px = img[labels == 0].astype(np.float32)
        bg_rms = float(np.sqrt(((bg_px - bg) ** 2).mean())) if bg_px.size else 0.0
    if not parts:
        return bg_rms, 0.0
    errs = []
    for _, (ys, xs), interior in parts:
        if matched[ys, xs][interior].all():
            errs.append(np.float32(0.0))
            continue
        px = img[ys, xs][interior].astype(np.float32)
        errs.append(((px - np.median(px, axis=0)) ** 2).mean())
    return bg_rms, float(np.sqrt(np.mean(errs)))


def detect_stacked(imgs: np.ndarray, min_area: int) -> list[Detection]:
    """Detections for an (N, H, W, 3) uint8 stack; `min_area` is the detector's speck limit here."""
    n, h, w, _ = imgs.shape
    canvas = min(h, w)
    bgs = _backgrounds(imgs)
    refs = np.concatenate([bgs[:, None, :], np.broadcast_to(_PALETTE, (n, *_PALETTE.shape))], axis=1)
    labels, matched, rest = _nearest_labels(imgs, refs)
    bg_rms = _background_rms(labels, bgs, rest)
    out = []
    for i, parts in enumerate(_objects(labels, canvas, min_area)):
        bg_rms_i, obj_rms = _rms(imgs[i], labels[i], matched[i], bgs[i], bg_rms[i], parts)
        objects = sorted((p[0] for p in parts), key=lambda o: (o.bbox[1], o.bbox[0]))
        out.append(Detection(
            size=(h, w), background=_nearest_name(bgs[i], BACKGROUNDS),
            background_rgb=tuple(float(v) for v in bgs[i]), objects=objects,  # type: ignore[arg-type]
            background_rms=bg_rms_i, object_rms=obj_rms,
        ))
    return out
