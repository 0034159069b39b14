"""Rendering: PIL, flat colours, no anti-aliasing, so every pixel is either background or exactly one palette colour.

The shape geometry here is the single definition the detector's templates reuse (`shape_mask`), which is why
the detector can be exact on clean renders at any size.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from unipic.data.shapes.world import BACKGROUNDS, COLORS, Scene


def _draw(draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int], fill: tuple[int, ...] | int) -> None:
    x0, y0, x1, y1 = box
    xe, ye = x1 - 1, y1 - 1
    if shape == "square":
        draw.rectangle([x0, y0, xe, ye], fill=fill)
    elif shape == "circle":
        draw.ellipse([x0, y0, xe, ye], fill=fill)
    elif shape == "triangle":
        draw.polygon([(x0, ye), (xe, ye), ((x0 + xe) / 2.0, y0)], fill=fill)
    else:
        raise ValueError(f"unknown shape '{shape}'")


@lru_cache(maxsize=4096)
def shape_mask(shape: str, width: int, height: int) -> np.ndarray:
    """Boolean mask of a shape rendered into a width x height box (the renderer's exact pixels)."""
    img = Image.new("L", (width, height), 0)
    _draw(ImageDraw.Draw(img), shape, (0, 0, width, height), 255)
    mask = np.asarray(img) > 0
    mask.setflags(write=False)
    return mask


def render(scene: Scene, size: int | None = None) -> np.ndarray:
    """Render a scene to an (H, W, 3) uint8 array. `size` re-targets the canvas (default: the scene's own)."""
    if size is not None and size != scene.size:
        scene = scene.resized(size)
    img = Image.new("RGB", (scene.size, scene.size), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(img)
    for obj in scene.objects:
        _draw(draw, obj.shape, obj.bbox, COLORS[obj.color])
    return np.asarray(img, dtype=np.uint8).copy()


def to_png(image: np.ndarray) -> bytes:
    """Lossless PNG bytes of an (H, W, 3) uint8 image."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def from_png(data: bytes) -> np.ndarray:
    """Decode PNG (or any PIL-readable) bytes to an (H, W, 3) uint8 array."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
