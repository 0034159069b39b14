"""The ShapesWorld detector: reads an image back into objects. No weights, numpy + scipy only.

Pipeline (one image):
1. background colour = median of the 1-px border (the renderer keeps objects off the border);
2. every pixel goes to the nearest of {background, palette colours} (RGB distance);
3. per palette colour, 8-connected components (`scipy.ndimage.label`);
4. drop specks (area below a quarter of the smallest object's box) and 1-px rings (nothing left after a 3x3
   erosion: what blur leaves around an object in a neighbouring colour);
5. shape = the renderer template (same PIL geometry, same box) with the highest IoU with the component mask.

It is strict on purpose: a speck large enough to survive step 4 is an extra object, so a generated image with
stray blobs fails the exact-match test, as in notes/shapesworld_learnability.md section 1. It also measures how
flat the image is (`cleanliness`), because a reward that only counts objects is blind to low-amplitude noise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache

import numpy as np
from scipy import ndimage

from unipic.data.shapes.render import shape_mask
from unipic.data.shapes.world import BACKGROUNDS, COLORS, SHAPES, Scene, SceneObject, side_px, size_class_of

_COLOR_NAMES = tuple(COLORS)
_PALETTE = np.array([COLORS[c] for c in _COLOR_NAMES], dtype=np.float32)
_EIGHT = np.ones((3, 3), dtype=bool)
# Cleanliness: exp(-(background rms + object rms) / scale). Gaussian noise of sigma 3 (intensity units) -> ~0.5.
CLEANLINESS_SCALE = 8.0
# Largest stack the batched detector labels at once (its int32 working arrays stay around 100 MB).
STACK_PIXELS = 1 << 22


@dataclass(frozen=True)
class DetectedObject:
    shape: str
    color: str
    size: str
    bbox: tuple[int, int, int, int]
    center: tuple[float, float]
    area: int
    fill_ratio: float
    match: float

    def to_dict(self) -> dict[str, object]:
        """`asdict` without its deep copy (every field is immutable): scorers call this per object."""
        return {f: getattr(self, f) for f in _OBJECT_FIELDS}


_OBJECT_FIELDS = tuple(f.name for f in fields(DetectedObject))


@dataclass(frozen=True)
class Detection:
    """Everything read from one image: background, objects, and flatness measures (intensity units, 0-255)."""

    size: tuple[int, int]
    background: str
    background_rgb: tuple[float, float, float]
    objects: list[DetectedObject] = field(default_factory=list)
    background_rms: float = 0.0
    object_rms: float = 0.0

    @property
    def cleanliness(self) -> float:
        """1.0 for a flat render; falls towards 0 as the background or the objects carry noise."""
        return float(np.exp(-(self.background_rms + self.object_rms) / CLEANLINESS_SCALE))

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["cleanliness"] = self.cleanliness
        return out

    def to_scene(self) -> Scene:
        """The detection as a Scene: on a clean render, rendering it gives back the same pixels."""
        objs = [SceneObject(shape=o.shape, color=o.color, size=o.size, bbox=o.bbox)  # type: ignore[arg-type]
                for o in self.objects]
        return Scene(size=self.size[1], background=self.background, objects=objs)  # type: ignore[arg-type]


def _as_image(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 from HWC or CHW, uint8 or float in [0, 1], numpy or anything with `.numpy()` (torch)."""
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()  # type: ignore[union-attr]
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[2] != 3:
        arr = arr.transpose(1, 2, 0)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.max(initial=0) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return arr


def _background(img: np.ndarray) -> np.ndarray:
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).astype(np.float32)
    return np.median(border, axis=0)


def _nearest_name(rgb: np.ndarray, table: dict[str, tuple[int, int, int]]) -> str:
    names = list(table)
    d = ((np.array([table[n] for n in names], dtype=np.float32) - rgb) ** 2).sum(1)
    return names[int(np.argmin(d))]


def _nearest_labels(img: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Index of the nearest reference colour per pixel (ties go to the lower index, i.e. the background).

    A loop over the few references in int32 is ~4x faster than one (N, K, 3) float tensor on a CPU."""
    x = img.astype(np.int32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    refs_i = np.rint(refs).astype(np.int32)
    labels = np.zeros(img.shape[:2], dtype=np.int8)
    best = None
    for k, (rr, gg, bb) in enumerate(refs_i):
        d = (r - rr) ** 2 + (g - gg) ** 2 + (b - bb) ** 2
        if best is None:
            best = d
            continue
        closer = d < best
        best = np.minimum(d, best)
        labels[closer] = k
    return labels


@lru_cache(maxsize=4096)
def _template(shape: str, width: int, height: int) -> tuple[np.ndarray, int]:
    """The renderer's mask of `shape` in a width x height box, and its area."""
    tmpl = shape_mask(shape, width, height)
    return tmpl, int(np.count_nonzero(tmpl))


_size_class = lru_cache(maxsize=4096)(size_class_of)


def _best_shape(mask: np.ndarray, total: int | None = None) -> tuple[str, float]:
    """The template with the highest IoU with `mask` (whose area is `total` when the caller knows it)."""
    h, w = mask.shape
    best, best_iou = SHAPES[0], -1.0
    total = int(np.count_nonzero(mask)) if total is None else total
    for shape in SHAPES:
        tmpl, tmpl_area = _template(shape, w, h)
        inter = np.count_nonzero(mask & tmpl)
        iou = inter / float(total + tmpl_area - inter)
        if iou > best_iou:
            best, best_iou = shape, float(iou)
    return best, best_iou


def _erode8(mask: np.ndarray) -> np.ndarray:
    """3x3 binary erosion, outside the box counted as background (`ndimage.binary_erosion` with `_EIGHT`,
    without its per-call setup: the detectors call this once per object)."""
    h, w = mask.shape
    padded = np.zeros((h + 2, w + 2), dtype=bool)
    padded[1:-1, 1:-1] = mask
    out = mask.copy()
    for dy in range(3):
        for dx in range(3):
            if dy != 1 or dx != 1:
                out &= padded[dy:dy + h, dx:dx + w]
    return out


def component_object(sub: np.ndarray, sl: tuple[slice, slice], area: int, color: str,
                     canvas: int) -> tuple[DetectedObject, np.ndarray] | None:
    """One colour component (its mask `sub` inside its box `sl`) as an object, with its interior; None for a
    1-px ring (nothing left after a 3x3 erosion). Shared by the per-image and the stacked detector."""
    interior = _erode8(sub)
    if not interior.any():
        return None
    ys, xs = sl
    x0, y0, x1, y1 = xs.start, ys.start, xs.stop, ys.stop
    shape, iou = _best_shape(sub, area)
    bw, bh = x1 - x0, y1 - y0
    obj = DetectedObject(
        shape=shape, color=color, size=_size_class(max(bw, bh), canvas),
        bbox=(int(x0), int(y0), int(x1), int(y1)),
        center=((x0 + x1) / 2.0, (y0 + y1) / 2.0), area=area,
        fill_ratio=float(area) / float(bw * bh), match=iou,
    )
    return obj, interior


class ShapesDetector:
    """Colour segmentation + template shape classification. Thresholds scale with the canvas."""

    def __init__(self, min_area_frac: float = 0.25) -> None:
        self.min_area_frac = min_area_frac

    def min_area(self, canvas: int) -> int:
        return max(4, int(self.min_area_frac * side_px("small", canvas) ** 2))

    def detect(self, image: np.ndarray) -> Detection:
        img = _as_image(image)
        h, w, _ = img.shape
        canvas = min(h, w)
        bg = _background(img)
        refs = np.concatenate([bg[None, :], _PALETTE], axis=0)
        labels = _nearest_labels(img, refs)
        min_area = self.min_area(canvas)

        objects: list[DetectedObject] = []
        interiors: list[np.ndarray] = []
        for k, color in enumerate(_COLOR_NAMES, start=1):
            mask = labels == k
            if not mask.any():
                continue
            comp, n = ndimage.label(mask, structure=_EIGHT)
            if n == 0:
                continue
            areas = np.bincount(comp.ravel(), minlength=n + 1)
            for idx, sl in enumerate(ndimage.find_objects(comp), start=1):
                if sl is None or areas[idx] < min_area:
                    continue
                found = component_object(comp[sl] == idx, sl, int(areas[idx]), color, canvas)
                if found is None:
                    continue
                objects.append(found[0])
                full = np.zeros((h, w), dtype=bool)
                full[sl] = found[1]
                interiors.append(full)
        objects.sort(key=lambda o: (o.bbox[1], o.bbox[0]))

        bg_mask = labels == 0
        fimg = img.astype(np.float32)
        bg_rms = float(np.sqrt(((fimg[bg_mask] - bg) ** 2).mean())) if bg_mask.any() else 0.0
        obj_rms = 0.0
        if interiors:
            errs = []
            for interior in interiors:
                px = fimg[interior]
                errs.append(((px - np.median(px, axis=0)) ** 2).mean())
            obj_rms = float(np.sqrt(np.mean(errs)))
        return Detection(
            size=(h, w), background=_nearest_name(bg, BACKGROUNDS),
            background_rgb=tuple(float(v) for v in bg), objects=objects,  # type: ignore[arg-type]
            background_rms=bg_rms, object_rms=obj_rms,
        )

    def detect_batch(self, images: np.ndarray | Sequence[np.ndarray] | Iterable[np.ndarray]
                     ) -> list[Detection]:
        """Detect on a batch: an (N, H, W, 3) array or any iterable of (H, W, 3) images.

        Same-size images go through the stacked detector (`detect_stacked`, identical detections at a
        fraction of the per-image Python cost), in chunks of at most `STACK_PIXELS` pixels; a lone size (or a
        subclass with its own `detect`) goes per image."""
        from unipic.data.shapes.detect_stacked import detect_stacked

        imgs = [_as_image(img) for img in images]
        out: list[Detection | None] = [None] * len(imgs)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, img in enumerate(imgs):
            by_shape.setdefault(img.shape, []).append(i)
        for (h, w, _), idx in by_shape.items():
            step = max(1, STACK_PIXELS // (h * w))
            if len(idx) == 1 or min(h, w) < 3 or type(self).detect is not ShapesDetector.detect:
                for i in idx:
                    out[i] = self.detect(imgs[i])
                continue
            for a in range(0, len(idx), step):
                chunk = idx[a:a + step]
                dets = detect_stacked([imgs[i] for i in chunk], self.min_area(min(h, w)))
                for i, d in zip(chunk, dets, strict=True):
                    out[i] = d
        return out  # type: ignore[return-value]


_DEFAULT = ShapesDetector()


def detect(image: np.ndarray) -> Detection:
    return _DEFAULT.detect(image)


def detect_batch(images: np.ndarray | Sequence[np.ndarray] | Iterable[np.ndarray]) -> list[Detection]:
    return _DEFAULT.detect_batch(images)
