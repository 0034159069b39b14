"""The ShapesWorld vocabulary and scene model.

A scene is a square canvas of one flat background colour with a few non-overlapping flat shapes. Everything a
prompt or an edit can talk about (shape, colour, size class, position, background) is a field here, so ground
truth is exact and a detector can read a render back without loss.

The palette is chosen for separation, not beauty: every pair of object colours is at least ~100 RGB units apart
and every object colour is far from every background, so nearest-colour segmentation is exact on clean renders
and survives mild noise, blur and JPEG (see benchmarks/shapes_world.py).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, computed_field

ShapeName = Literal["circle", "square", "triangle"]
ColorName = Literal["red", "green", "blue", "yellow", "purple", "orange"]
SizeName = Literal["small", "medium", "large"]
BackgroundName = Literal["white", "black", "gray"]

SHAPES: tuple[str, ...] = ShapeName.__args__  # type: ignore[attr-defined]
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 25, 35),
    "green": (30, 160, 60),
    "blue": (35, 75, 215),
    "yellow": (250, 230, 40),
    "purple": (130, 50, 190),
    "orange": (245, 130, 20),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
}
# Side length as a fraction of the canvas. Fixed per class (no jitter) so the size class reads back exactly.
SIZES: dict[str, float] = {"small": 0.19, "medium": 0.28, "large": 0.375}
DEFAULT_BACKGROUND: BackgroundName = "white"
MIN_SIDE_PX = 5


def side_px(size: str, canvas: int) -> int:
    """Side length in pixels of a size class on a canvas: at least 5 px (below that shapes stop being distinct)
    and at least 2 px more than the class below, so size classes stay distinguishable on tiny canvases."""
    side = 0
    for name, frac in SIZES.items():
        side = max(MIN_SIDE_PX if side == 0 else side + 2, int(round(frac * canvas)))
        if name == size:
            return side
    raise KeyError(f"unknown size class '{size}'; choose one of {', '.join(SIZES)}")


def size_class_of(side: float, canvas: int) -> str:
    """The size class whose nominal side is nearest (in log space) to a measured side length."""
    ratios = {name: abs(np.log(max(side, 1.0) / side_px(name, canvas))) for name in SIZES}
    return min(ratios, key=ratios.__getitem__)


def gap_px(canvas: int) -> int:
    """Minimum empty pixels between two objects' boxes: enough that blur does not merge them."""
    return max(2, int(round(0.04 * canvas)))


def margin_px(canvas: int) -> int:
    """Minimum empty pixels between an object and the canvas edge, so the border is always background."""
    return max(1, int(round(0.03 * canvas)))


class SceneObject(BaseModel):
    """One flat shape. `bbox` is (x0, y0, x1, y1) in pixels with exclusive ends, on the scene's canvas."""

    model_config = ConfigDict(frozen=True)

    shape: ShapeName
    color: ColorName
    size: SizeName
    bbox: tuple[int, int, int, int]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.bbox
        return ((x0 + x1) / 2.0, (y0 + y1) / 2.0)

    @property
    def width(self) -> int:
        return self.bbox[2] - self.bbox[0]

    @property
    def height(self) -> int:
        return self.bbox[3] - self.bbox[1]

    @property
    def label(self) -> str:
        return f"{self.color} {self.shape}"


class Scene(BaseModel):
    """A canvas: its side, background colour name, and objects. JSON round-trips via model_dump/model_validate."""

    size: int
    background: BackgroundName = DEFAULT_BACKGROUND
    objects: list[SceneObject] = []

    @computed_field  # type: ignore[prop-decorator]
    @property
    def objects_norm(self) -> list[dict[str, object]]:
        """The objects with boxes and centres normalised to [0, 1], for consumers that work at any resolution."""
        s = float(self.size)
        return [
            {"shape": o.shape, "color": o.color, "size": o.size,
             "bbox": [round(v / s, 5) for v in o.bbox],
             "center": [round(o.center[0] / s, 5), round(o.center[1] / s, 5)]}
            for o in self.objects
        ]

    def resized(self, size: int) -> Scene:
        """The same scene on another canvas: boxes scale, size classes keep their nominal side."""
        if size == self.size:
            return self
        scale = size / self.size
        objs = []
        for o in self.objects:
            cx, cy = o.center[0] * scale, o.center[1] * scale
            side = side_px(o.size, size)
            x0 = int(round(cx - side / 2.0))
            y0 = int(round(cy - side / 2.0))
            x0 = min(max(x0, 0), size - side)
            y0 = min(max(y0, 0), size - side)
            objs.append(o.model_copy(update={"bbox": (x0, y0, x0 + side, y0 + side)}))
        return Scene(size=size, background=self.background, objects=objs)

    def to_dict(self) -> dict[str, object]:
        return self.model_dump(mode="json")


def boxes_clear(box: tuple[int, int, int, int], others: list[tuple[int, int, int, int]], gap: int) -> bool:
    """True when `box` keeps at least `gap` empty pixels to every box in `others`."""
    x0, y0, x1, y1 = box
    for a0, b0, a1, b1 in others:
        if x0 < a1 + gap and a0 < x1 + gap and y0 < b1 + gap and b0 < y1 + gap:
            return False
    return True


def box_in_canvas(box: tuple[int, int, int, int], canvas: int) -> bool:
    m = margin_px(canvas)
    x0, y0, x1, y1 = box
    return x0 >= m and y0 >= m and x1 <= canvas - m and y1 <= canvas - m


def place(rng: np.random.Generator, canvas: int, side: int, occupied: list[tuple[int, int, int, int]],
          tries: int = 256, region: tuple[int, int, int, int] | None = None) -> tuple[int, int, int, int] | None:
    """A random box of `side` px clear of `occupied`, with its top-left corner in `region` (x_lo, x_hi, y_lo,
    y_hi, inclusive; default: anywhere inside the canvas margins), or None if none was found.

    Candidates are drawn in vectorised batches: the Python loop per candidate dominated generation time."""
    m = margin_px(canvas)
    hi = canvas - m - side
    x_lo, x_hi, y_lo, y_hi = region if region is not None else (m, hi, m, hi)
    x_lo, y_lo, x_hi, y_hi = max(x_lo, m), max(y_lo, m), min(x_hi, hi), min(y_hi, hi)
    if x_hi < x_lo or y_hi < y_lo:
        return None
    gap = gap_px(canvas)
    batch = 32
    for _ in range(max(1, tries // batch)):
        xs = rng.integers(x_lo, x_hi + 1, size=batch)
        ys = rng.integers(y_lo, y_hi + 1, size=batch)
        ok = np.ones(batch, dtype=bool)
        for a0, b0, a1, b1 in occupied:
            ok &= ~((xs < a1 + gap) & (a0 < xs + side + gap) & (ys < b1 + gap) & (b0 < ys + side + gap))
        hit = np.flatnonzero(ok)
        if hit.size:
            x0, y0 = int(xs[hit[0]]), int(ys[hit[0]])
            return (x0, y0, x0 + side, y0 + side)
    return None


def relations(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> set[str]:
    """Spatial relations of box `a` relative to box `b`, exactly as GenEval computes them.

    Centre offset a-b, each axis shrunk by 0.1 * (dim_a + dim_b), normalised by the raw offset norm; an axis
    above 0.5 in magnitude yields 'left of'/'right of' (x) or 'above'/'below' (y, image rows grow downwards).
    """
    ax = (a[0] + a[2]) / 2.0
    ay = (a[1] + a[3]) / 2.0
    bx = (b[0] + b[2]) / 2.0
    by = (b[1] + b[3]) / 2.0
    off = np.array([ax - bx, ay - by])
    dims = np.array([(a[2] - a[0]) + (b[2] - b[0]), (a[3] - a[1]) + (b[3] - b[1])])
    revised = np.maximum(np.abs(off) - 0.1 * dims, 0) * np.sign(off)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(off)
    out = set()
    if dx < -0.5:
        out.add("left of")
    if dx > 0.5:
        out.add("right of")
    if dy < -0.5:
        out.add("above")
    if dy > 0.5:
        out.add("below")
    return out


RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
