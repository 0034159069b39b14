"""Text-to-image samples that mirror GenEval's six tasks, with exact structured specs.

| task | caption | correct when the image holds exactly |
|---|---|---|
| single_object | "a circle" | one object, a circle (any colour; GenEval checks the class only) |
| two_object | "a red circle and a blue square" | those two objects (two different shapes) |
| counting | "three green triangles" | N objects, all green triangles (N in 2..max_count) |
| colors | "a blue square" | one object, a blue square (the colour is the point) |
| position | "a red circle left of a blue square" | those two objects, and the relation holds (GenEval rule) |
| color_attr | "a red circle and a green square" | those two objects; shapes AND colours differ, so binding matters |

"Exactly" is the strict ShapesWorld rule (notes/shapesworld_learnability.md section 1): the multiset of detected
(shape, colour) must equal the requested one, so extra objects fail. Captions are short and template-built from a
vocabulary of about 25 words so a tiny tokenizer can carry them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pydantic import BaseModel

from unipic.config.data import ShapesConfig
from unipic.data.shapes import heldout as ho
from unipic.data.shapes.sampling import PlacementFailed, add_object, choice
from unipic.data.shapes.world import RELATIONS, SIZES, Scene, SceneObject, gap_px, place, relations, side_px

NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}


class ObjectRequirement(BaseModel):
    shape: str
    color: str | None = None
    count: int = 1

    @property
    def item(self) -> str:
        return f"{self.color} {self.shape}" if self.color else self.shape


class RelationRequirement(BaseModel):
    subject: int
    relation: str
    reference: int


class T2ISpec(BaseModel):
    """What a caption asks for: the exact multiset of objects and, for `position`, one relation."""

    task: str
    caption: str
    objects: list[ObjectRequirement]
    relation: RelationRequirement | None = None

    @property
    def n_objects(self) -> int:
        return sum(r.count for r in self.objects)


class T2ISample(BaseModel):
    index: int
    task: str
    caption: str
    split: str
    spec: T2ISpec
    scene: Scene


def article(item: str) -> str:
    """'a red circle', 'an orange square'."""
    return f"{'an' if item[0] in 'aeiou' else 'a'} {item}"


def _plural(shape: str) -> str:
    return shape + "s"


def _single_object(rng: np.random.Generator, cfg: ShapesConfig) -> tuple[T2ISpec, list[SceneObject], str | None]:
    shape, color = choice(rng, cfg.shapes), choice(rng, cfg.colors)
    obj = add_object(rng, cfg.image_size, [], shape=shape, color=color, sizes=cfg.sizes)
    spec = T2ISpec(task="single_object", caption=article(shape), objects=[ObjectRequirement(shape=shape)])
    return spec, [obj], None


def _colors(rng: np.random.Generator, cfg: ShapesConfig) -> tuple[T2ISpec, list[SceneObject], str | None]:
    shape, color = choice(rng, cfg.shapes), choice(rng, cfg.colors)
    obj = add_object(rng, cfg.image_size, [], shape=shape, color=color, sizes=cfg.sizes)
    req = ObjectRequirement(shape=shape, color=color)
    return T2ISpec(task="colors", caption=article(req.item), objects=[req]), [obj], None


def _two(rng: np.random.Generator, cfg: ShapesConfig, task: str) -> tuple[T2ISpec, list[SceneObject], str | None]:
    s1, s2 = (str(s) for s in rng.choice(cfg.shapes, size=2, replace=False))
    if task == "color_attr":
        c1, c2 = (str(c) for c in rng.choice(cfg.colors, size=2, replace=False))
    else:
        c1, c2 = choice(rng, cfg.colors), choice(rng, cfg.colors)
    objs: list[SceneObject] = []
    for s, c in ((s1, c1), (s2, c2)):
        objs.append(add_object(rng, cfg.image_size, objs, shape=s, color=c, sizes=cfg.sizes))
    reqs = [ObjectRequirement(shape=s1, color=c1), ObjectRequirement(shape=s2, color=c2)]
    caption = f"{article(reqs[0].item)} and {article(reqs[1].item)}"
    return T2ISpec(task=task, caption=caption, objects=reqs), objs, ho.pair_key([r.item for r in reqs])


def _counting(rng: np.random.Generator, cfg: ShapesConfig) -> tuple[T2ISpec, list[SceneObject], str | None]:
    n = int(rng.integers(2, cfg.max_count + 1))
    shape, color = choice(rng, cfg.shapes), choice(rng, cfg.colors)
    objs: list[SceneObject] = []
    for _ in range(n):
        objs.append(add_object(rng, cfg.image_size, objs, shape=shape, color=color, sizes=cfg.sizes))
    req = ObjectRequirement(shape=shape, color=color, count=n)
    caption = f"{NUMBER_WORDS[n]} {color} {_plural(shape)}"
    return T2ISpec(task="counting", caption=caption, objects=[req]), objs, ho.count_key(n, req.item)


def _position(rng: np.random.Generator, cfg: ShapesConfig) -> tuple[T2ISpec, list[SceneObject], str | None]:
    while True:
        a = (choice(rng, cfg.colors), choice(rng, cfg.shapes))
        b = (choice(rng, cfg.colors), choice(rng, cfg.shapes))
        if a != b:
            break
    rel = choice(rng, RELATIONS)
    ref = add_object(rng, cfg.image_size, [], shape=b[1], color=b[0], sizes=cfg.sizes)
    subj = place_related(rng, cfg.image_size, ref, a[1], a[0], cfg.sizes, rel)
    reqs = [ObjectRequirement(shape=a[1], color=a[0]), ObjectRequirement(shape=b[1], color=b[0])]
    caption = f"{article(reqs[0].item)} {rel} {article(reqs[1].item)}"
    spec = T2ISpec(task="position", caption=caption, objects=reqs,
                   relation=RelationRequirement(subject=0, relation=rel, reference=1))
    return spec, [subj, ref], ho.relation_key(reqs[0].item, rel, reqs[1].item)


def place_related(rng: np.random.Generator, canvas: int, ref: SceneObject, shape: str, color: str,
                  sizes: list[str], rel: str) -> SceneObject:
    """An object placed so that exactly `rel` holds relative to `ref` (GenEval's rule, no second relation):
    drawn from the half-plane on the named side, within a band around the reference's other coordinate.
    A random size is tried first, then the smaller allowed ones."""
    size = choice(rng, sizes)
    for s in sorted((s for s in sizes if SIZES[s] <= SIZES[size]), key=lambda s: -SIZES[s]):
        obj = _place_related(rng, canvas, ref, shape, color, s, rel)
        if obj is not None:
            return obj
    raise PlacementFailed(f"no room for a {color} {shape} {rel} the {ref.label}")


def _place_related(rng: np.random.Generator, canvas: int, ref: SceneObject, shape: str, color: str, size: str,
                   rel: str) -> SceneObject | None:
    side = side_px(size, canvas)
    gap = gap_px(canvas)
    x0, y0, x1, y1 = ref.bbox
    cx, cy = ref.center
    band = int(0.2 * canvas)
    across_x = (int(cx - side / 2) - band, int(cx - side / 2) + band)
    across_y = (int(cy - side / 2) - band, int(cy - side / 2) + band)
    region = {
        "left of": (0, x0 - gap - side, *across_y),
        "right of": (x1 + gap, canvas, *across_y),
        "above": (*across_x, 0, y0 - gap - side),
        "below": (*across_x, y1 + gap, canvas),
    }[rel]
    for _ in range(8):
        box = place(rng, canvas, side, [ref.bbox], tries=32, region=region)
        if box is None:
            break
        if relations(box, ref.bbox) == {rel}:
            return SceneObject(shape=shape, color=color, size=size, bbox=box)  # type: ignore[arg-type]
    return None


_TASKS: dict[str, Callable[..., tuple[T2ISpec, list[SceneObject], str | None]]] = {
    "single_object": _single_object,
    "two_object": lambda rng, cfg: _two(rng, cfg, "two_object"),
    "counting": _counting,
    "colors": _colors,
    "position": _position,
    "color_attr": lambda rng, cfg: _two(rng, cfg, "color_attr"),
}


def sample_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    """The generator of sample `index`: depends only on (seed, stream, index), never on n or sharding."""
    return np.random.default_rng([int(seed), int(stream), int(index)])


def t2i_split(spec: T2ISpec, scene: Scene, key: str | None, cfg: ShapesConfig) -> str:
    pairs: list[tuple[str, str]] = [(o.color, o.shape) for o in scene.objects]
    pairs += [(r.color, r.shape) for r in spec.objects if r.color]
    return ho.split_of(pairs, key, colors=cfg.colors, shapes=cfg.shapes, fraction=cfg.heldout_fraction)


def make_t2i_sample(cfg: ShapesConfig, index: int, max_tries: int = 1000) -> T2ISample:
    """Sample `index` of the T2I stream: task, spec and scene, in the split `cfg.heldout` asks for."""
    rng = sample_rng(cfg.seed, 1, index)
    want = ho.HELDOUT if cfg.heldout else ho.TRAIN
    task = str(cfg.t2i_tasks[index % len(cfg.t2i_tasks)])
    for _ in range(max_tries):
        try:
            spec, objs, key = _TASKS[task](rng, cfg)
        except PlacementFailed:
            continue
        scene = Scene(size=cfg.image_size, background=cfg.background, objects=objs)
        split = t2i_split(spec, scene, key, cfg)
        if split == want:
            return T2ISample(index=index, task=task, caption=spec.caption, split=split, spec=spec, scene=scene)
    from unipic.errors import DataError

    raise DataError(
        f"no {want} sample for task '{task}' after {max_tries} draws with colors={cfg.colors}, "
        f"shapes={cfg.shapes}, sizes={cfg.sizes}, image_size={cfg.image_size}: the held-out rule or the canvas "
        "leaves no room; add colours/shapes, raise shapes.image_size, or change shapes.heldout_fraction"
    )
