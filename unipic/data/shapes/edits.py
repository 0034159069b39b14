"""Editing triplets (source scene, instruction, target scene) that mirror GEdit-Bench categories.

| category | instruction | what changes | GEdit-Bench group |
|---|---|---|---|
| recolor | "make the red circle blue" | the target's colour | color_alter |
| add | "add a blue square" | one new object, anywhere free | subject-add |
| remove | "remove the red circle" | the target disappears | subject-remove |
| replace | "replace the red circle with a square" | the target's shape (same colour, box) | subject-replace |
| move | "move the red circle left" | the target's position, >= 20 % of the canvas | motion_change (spatial) |
| resize | "make the red circle bigger" | the target's size class, same centre | (ImgEdit "adjust") |
| background | "make the background black" | the background colour | background_change |

The target is always named by colour + shape, and that pair is unique in the source, so the instruction refers
to exactly one object. `EditSpec.preserved` lists the source objects that must come out unchanged; the background
must too unless the category is `background`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydantic import BaseModel

from unipic.config.data import ShapesConfig
from unipic.data.shapes import heldout as ho
from unipic.data.shapes.sampling import PlacementFailed, add_object, choice
from unipic.data.shapes.t2i import article, sample_rng
from unipic.data.shapes.world import (
    BACKGROUNDS,
    SIZES,
    Scene,
    SceneObject,
    box_in_canvas,
    boxes_clear,
    gap_px,
    side_px,
)

MOVE_DIRECTIONS = ("left", "right", "up", "down")
MIN_MOVE_FRAC = 0.2


class EditSpec(BaseModel):
    """What an instruction asks for, structured: the scorer's input."""

    category: str
    instruction: str
    image_size: int = 0
    target: int | None = None
    target_object: SceneObject | None = None
    params: dict[str, str] = {}
    preserved: list[int] = []
    preserve_background: bool = True


class EditSample(BaseModel):
    index: int
    category: str
    instruction: str
    split: str
    spec: EditSpec
    source: Scene
    target: Scene


def _source_scene(rng: np.random.Generator, cfg: ShapesConfig) -> Scene:
    n = int(rng.integers(1, cfg.max_edit_objects + 1))
    objs: list[SceneObject] = []
    for _ in range(n):
        objs.append(add_object(rng, cfg.image_size, objs, shape=choice(rng, cfg.shapes),
                               color=choice(rng, cfg.colors), sizes=cfg.sizes))
    return Scene(size=cfg.image_size, background=cfg.background, objects=objs)


def _unique_targets(scene: Scene) -> list[int]:
    labels = [o.label for o in scene.objects]
    return [i for i, lab in enumerate(labels) if labels.count(lab) == 1]


def _fits(box: tuple[int, int, int, int], others: list[SceneObject], canvas: int) -> bool:
    return box_in_canvas(box, canvas) and boxes_clear(box, [o.bbox for o in others], gap_px(canvas))


EditResult = tuple[str, dict[str, str], Scene, str]


def _with(scene: Scene, i: int, obj: SceneObject | None) -> Scene:
    objs = list(scene.objects)
    if obj is None:
        objs.pop(i)
    else:
        objs[i] = obj
    return scene.model_copy(update={"objects": objs})


def _recolor(rng: np.random.Generator, cfg: ShapesConfig, src: Scene, i: int) -> EditResult:
    obj = src.objects[i]
    new = choice(rng, [c for c in cfg.colors if c != obj.color])
    return f"make the {obj.label} {new}", {"color": new}, _with(src, i, obj.model_copy(update={"color": new})), new


def _remove(rng: np.random.Generator, cfg: ShapesConfig, src: Scene, i: int) -> EditResult:
    return f"remove the {src.objects[i].label}", {}, _with(src, i, None), "-"


def _replace(rng: np.random.Generator, cfg: ShapesConfig, src: Scene, i: int) -> EditResult:
    obj = src.objects[i]
    new = choice(rng, [s for s in cfg.shapes if s != obj.shape])
    tgt = _with(src, i, obj.model_copy(update={"shape": new}))
    return f"replace the {obj.label} with {article(new)}", {"shape": new}, tgt, new


def _move(rng: np.random.Generator, cfg: ShapesConfig, src: Scene, i: int) -> EditResult:
    obj = src.objects[i]
    canvas = cfg.image_size
    others = [o for j, o in enumerate(src.objects) if j != i]
    min_shift = int(np.ceil(MIN_MOVE_FRAC * canvas))
    options = []
    for d in MOVE_DIRECTIONS:
        dx, dy = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[d]
        for shift in range(min_shift, canvas):
            x0, y0, x1, y1 = obj.bbox
            box = (x0 + dx * shift, y0 + dy * shift, x1 + dx * shift, y1 + dy * shift)
            if not box_in_canvas(box, canvas):
                break
            if _fits(box, others, canvas):
                options.append((d, box))
    if not options:
        raise PlacementFailed("nowhere to move")
    d, box = options[int(rng.integers(len(options)))]
    return f"move the {obj.label} {d}", {"direction": d}, _with(src, i, obj.model_copy(update={"bbox": box})), d


def _resize(rng: np.random.Generator, cfg: ShapesConfig, src: Scene, i: int) -> EditResult:
    obj = src.objects[i]
    canvas = cfg.image_size
    others = [o for j, o in enumerate(src.objects) if j != i]
    options = []
    cx, cy = obj.center
    for s in cfg.sizes:
        if s == obj.size or side_px(s, canvas) == side_px(obj.size, canvas):
            continue
        side = side_px(s, canvas)
        x0, y0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
        box = (x0, y0, x0 + side, y0 + side)
        if _fits(box, others, canvas):
            options.append((s, box))
    if not options:
        raise PlacementFailed("no room to resize")
    s, box = options[int(rng.integers(len(options)))]
    word = "bigger" if SIZES[s] > SIZES[obj.size] else "smaller"
    tgt = _with(src, i, obj.model_copy(update={"size": s, "bbox": box}))
    return f"make the {obj.label} {word}", {"direction": word, "size": s}, tgt, word


def _background(rng: np.random.Generator, cfg: ShapesConfig, src: Scene, i: int | None) -> EditResult:
    new = choice(rng, [b for b in BACKGROUNDS if b != src.background])
    tgt = src.model_copy(update={"background": new})
    return f"make the background {new}", {"background": new}, tgt, new


def _add(rng: np.random.Generator, cfg: ShapesConfig, src: Scene, i: int | None) -> EditResult:
    shape, color = choice(rng, cfg.shapes), choice(rng, cfg.colors)
    new = add_object(rng, cfg.image_size, list(src.objects), shape=shape, color=color, sizes=cfg.sizes)
    tgt = src.model_copy(update={"objects": [*src.objects, new]})
    return f"add {article(f'{color} {shape}')}", {"shape": shape, "color": color}, tgt, f"{color} {shape}"


_TARGETED: dict[str, Callable[..., EditResult]] = {
    "recolor": _recolor, "remove": _remove, "replace": _replace, "move": _move, "resize": _resize,
}
_UNTARGETED: dict[str, Callable[..., EditResult]] = {"add": _add, "background": _background}


def make_edit(rng: np.random.Generator, cfg: ShapesConfig, category: str, source: Scene) -> tuple[EditSpec, Scene, str]:
    """Apply one random edit of `category` to `source`: (spec, target scene, composition key)."""
    if category in _UNTARGETED:
        instruction, params, target, param = _UNTARGETED[category](rng, cfg, source, None)
        spec = EditSpec(category=category, instruction=instruction, image_size=source.size, params=params,
                        preserved=list(range(len(source.objects))),
                        preserve_background=category != "background")
        return spec, target, ho.edit_key(category, None, param)
    if category not in _TARGETED:
        raise ValueError(f"unknown edit category '{category}'")
    candidates = _unique_targets(source)
    if not candidates:
        raise PlacementFailed("no uniquely named object")
    if category == "resize" and len(cfg.sizes) < 2:
        raise PlacementFailed("resize needs two sizes")
    i = candidates[int(rng.integers(len(candidates)))]
    instruction, params, target, param = _TARGETED[category](rng, cfg, source, i)
    spec = EditSpec(category=category, instruction=instruction, image_size=source.size, target=i,
                    target_object=source.objects[i], params=params, preserved=[j for j in range(len(source.objects)) if j != i])
    return spec, target, ho.edit_key(category, source.objects[i].label, param)


def make_edit_sample(cfg: ShapesConfig, index: int, max_tries: int = 1000) -> EditSample:
    """Sample `index` of the edit stream, in the split `cfg.heldout` asks for."""
    rng = sample_rng(cfg.seed, 2, index)
    want = ho.HELDOUT if cfg.heldout else ho.TRAIN
    category = str(cfg.edit_categories[index % len(cfg.edit_categories)])
    for _ in range(max_tries):
        try:
            source = _source_scene(rng, cfg)
            spec, target, key = make_edit(rng, cfg, category, source)
        except PlacementFailed:
            continue
        pairs = [(o.color, o.shape) for o in (*source.objects, *target.objects)]
        split = ho.split_of(pairs, key, colors=cfg.colors, shapes=cfg.shapes, fraction=cfg.heldout_fraction)
        if split == want:
            return EditSample(index=index, category=category, instruction=spec.instruction, split=split,
                              spec=spec, source=source, target=target)
    from unipic.errors import DataError

    raise DataError(
        f"no {want} edit sample for category '{category}' after {max_tries} draws (colors={cfg.colors}, "
        f"sizes={cfg.sizes}, image_size={cfg.image_size}); add colours/sizes or raise shapes.image_size"
    )
