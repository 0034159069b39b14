"""The ShapesWorld detector over a stack of same-size images: the per-image detector's steps, batched.

`ShapesDetector.detect` pays a fixed Python cost per image (a `label` call per colour, a loop over every
component, speck or not) that dominates on small canvases. Here the whole stack goes through each step at once:
the border medians in one call, palette assignment in one integer pass, and per colour one
`ndimage.label` over the (N, H, W) mask with a structure that never connects across the batch axis, areas by
one `bincount`, boxes by one `find_objects`. Only components that survive the speck filter (the real objects,
a few per image) reach Python. Every number is computed by the same operations on the same values as in
`detect`, so the detections are identical (tests/unit/test_shapes_detect_stacked.py checks it on clean,
noisy and blotchy images of every task).
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


def _backgrounds(imgs: np.ndarray) -> np.ndarray:
    """(N, 3) median of each image's 1-px border, in the per-image border order."""
    border = np.concatenate([imgs[:, 0], imgs[:, -1], imgs[:, :, 0], imgs[:, :, -1]], axis=1)
    return np.median(border.astype(np.float32), axis=1)


def _nearest_labels(imgs: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """(N, H, W) index of the nearest of each image's references (N, K, 3); ties go to the lower index."""
    x = imgs.astype(np.int32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    refs_i = np.rint(refs).astype(np.int32)[:, :, None, None, :]
    labels = np.zeros(imgs.shape[:3], dtype=np.int8)
    best = None
    for k in range(refs_i.shape[1]):
        ref = refs_i[:, k]
        d = (r - ref[..., 0]) ** 2 + (g - ref[..., 1]) ** 2 + (b - ref[..., 2]) ** 2
        if best is None:
            best = d
            continue
        closer = d < best
        np.minimum(d, best, out=best)
        labels[closer] = k
    return labels


def _objects(labels: np.ndarray, canvas: int, min_area: int
             ) -> list[list[tuple[DetectedObject, tuple[slice, slice], np.ndarray]]]:
    """Per image, its objects with box and interior, in the per-image detector's order (colour, then label)."""
    found: list[list[tuple[DetectedObject, tuple[slice, slice], np.ndarray]]] = [[] for _ in labels]
    for k, color in enumerate(_COLOR_NAMES, start=1):
        mask = labels == k
        if not mask.any():
            continue
        comp, n = ndimage.label(mask, structure=_EIGHT_IN_PLANE)
        areas = np.bincount(comp.ravel(), minlength=n + 1)
        big = np.flatnonzero(areas[1:] >= min_area) + 1
        if not big.size:
            continue
        boxes = ndimage.find_objects(comp)
        for idx in big.tolist():
            bs, ys, xs = boxes[idx - 1]
            sub = comp[bs.start, ys, xs] == idx
            got = component_object(sub, (ys, xs), int(areas[idx]), color, canvas)
            if got is not None:
                found[bs.start].append((got[0], (ys, xs), got[1]))
    return found


def _rms(img: np.ndarray, bg_mask: np.ndarray, bg: np.ndarray,
         parts: list[tuple[DetectedObject, tuple[slice, slice], np.ndarray]]) -> tuple[float, float]:
    """Background and object rms exactly as `detect` computes them (same values, same order, same dtype)."""
    bg_px = img[bg_mask].astype(np.float32)
    bg_rms = float(np.sqrt(((bg_px - bg) ** 2).mean())) if bg_px.size else 0.0
    if not parts:
        return bg_rms, 0.0
    errs = []
    for _, (ys, xs), interior in parts:
        px = img[ys, xs][interior].astype(np.float32)
        errs.append(((px - np.median(px, axis=0)) ** 2).mean())
    return bg_rms, float(np.sqrt(np.mean(errs)))


def detect_stacked(imgs: np.ndarray, min_area: int) -> list[Detection]:
    """Detections for an (N, H, W, 3) uint8 stack; `min_area` is the detector's speck limit for this canvas."""
    n, h, w, _ = imgs.shape
    canvas = min(h, w)
    bgs = _backgrounds(imgs)
    refs = np.concatenate([bgs[:, None, :], np.broadcast_to(_PALETTE, (n, *_PALETTE.shape))], axis=1)
    labels = _nearest_labels(imgs, refs)
    out = []
    for i, parts in enumerate(_objects(labels, canvas, min_area)):
        bg_rms, obj_rms = _rms(imgs[i], labels[i] == 0, bgs[i], parts)
        objects = sorted((p[0] for p in parts), key=lambda o: (o.bbox[1], o.bbox[0]))
        out.append(Detection(
            size=(h, w), background=_nearest_name(bgs[i], BACKGROUNDS),
            background_rgb=tuple(float(v) for v in bgs[i]), objects=objects,  # type: ignore[arg-type]
            background_rms=bg_rms, object_rms=obj_rms,
        ))
    return out
