"""Random placement of objects shared by the T2I and edit generators."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unipic.data.shapes.world import SIZES, SceneObject, place, side_px


class PlacementFailed(Exception):
    """No free spot for an object; the caller draws a new sample."""


def choice(rng: np.random.Generator, options: Sequence[str]) -> str:
    return str(options[int(rng.integers(len(options)))])


def add_object(rng: np.random.Generator, canvas: int, objects: list[SceneObject], *, shape: str, color: str,
               sizes: Sequence[str], size: str | None = None) -> SceneObject:
    """Place one object clear of `objects`, trying its size first, then the smaller allowed sizes."""
    size = size or choice(rng, sizes)
    order = sorted((s for s in sizes if SIZES[s] <= SIZES[size]), key=lambda s: -SIZES[s])
    boxes = [o.bbox for o in objects]
    for s in order:
        box = place(rng, canvas, side_px(s, canvas), boxes)
        if box is not None:
            return SceneObject(shape=shape, color=color, size=s, bbox=box)  # type: ignore[arg-type]
    raise PlacementFailed(f"no room for a {color} {shape} on a {canvas}px canvas")
