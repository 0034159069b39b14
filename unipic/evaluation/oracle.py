"""A pipeline stand-in that renders ShapesWorld ground truth for the twins' items: the upper bound of the
ShapesWorld benchmarks (it must score 1.0 / 10), used to check the benchmarks themselves, in tests, and to
measure judge throughput without a model. `corrupt=True` renders a wrong answer instead (colours swapped
for text-to-image, the untouched source for edits), which must score low."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from PIL import Image


def _key(prompt: str, image: Any) -> tuple[str, str | None]:
    return prompt, None if image is None else hashlib.md5(np.asarray(image).tobytes()).hexdigest()


class ShapesOraclePipeline:
    def __init__(self, cfg: Any, shapes: Any, corrupt: bool = False):
        from unipic.data.shapes.world import Scene
        from unipic.evaluation.benchmarks import make_benchmark

        self.corrupt = corrupt
        self.table: dict[tuple[str, str | None], Any] = {}
        for name in ("shapes_geneval", "shapes_gedit"):
            for it in make_benchmark(name, cfg, shapes).items():
                scene = it.meta["scene"] if it.source is None else it.meta["target"]
                self.table[_key(it.prompt, it.source)] = Scene.model_validate(scene)

    def __call__(self, prompt: list[str], image: list[Any] | None = None, **kwargs: Any) -> Any:
        from unipic.data.shapes.render import render

        out = []
        for i, p in enumerate(prompt):
            src = None if image is None else image[i]
            scene = self.table[_key(p, src)]
            if self.corrupt and src is not None:
                out.append(src.copy())
                continue
            if self.corrupt:
                objs = [o.model_copy(update={"color": "orange" if o.color != "orange" else "red"})
                        for o in scene.objects]
                scene = scene.model_copy(update={"objects": objs})
            out.append(Image.fromarray(render(scene)))

        class Output:
            images = out
        return Output()
