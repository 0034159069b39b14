"""Generation for benchmarks: any pipeline with our call signature (Kontext or MetaQuery), in batches,
fixed seeds, N images per prompt, resumable.

Images are kept as artifacts at `<out>/images/<item_id>/<k>.png`. A run that stops half-way is resumed by
running again: images already on disk (and decodable) are reused, missing or unreadable ones regenerated.
Each image has its own seed, `seed_for(base, item_id, k)`, so an image does not depend on the batch it was
generated in, on the order of items, or on whether it was generated in a resumed run.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from unipic.logging import get_logger
from unipic.progress import progress_bar

log = get_logger(__name__)


@dataclass
class EvalItem:
    """One prompt of a benchmark. `source` is set for editing benchmarks."""

    item_id: str
    prompt: str
    group: str
    source: Image.Image | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "edit" if self.source is not None else "t2i"


@dataclass
class GenerationStats:
    requested: int = 0
    generated: int = 0
    reused: int = 0
    regenerated_unreadable: int = 0
    seconds: float = 0.0

    @property
    def images_per_s(self) -> float:
        return self.generated / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"requested": self.requested, "generated": self.generated, "reused": self.reused,
                "regenerated_unreadable": self.regenerated_unreadable, "seconds": round(self.seconds, 3),
                "images_per_s": round(self.images_per_s, 3)}


def seed_for(base: int, item_id: str, k: int) -> int:
    return int(hashlib.sha256(f"{base}:{item_id}:{k}".encode()).hexdigest()[:8], 16)


def image_path(out: Path, item_id: str, k: int) -> Path:
    return out / "images" / item_id / f"{k:02d}.png"


def _readable(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            im.load()
        return True
    except (OSError, ValueError):
        return False


def _save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)


def generate(pipeline: Any, items: Sequence[EvalItem], out: str | Path, *, images_per_prompt: int, seed: int,
             num_inference_steps: int, guidance_scale: float, batch_size: int, height: int | None = None,
             width: int | None = None, image_guidance_scale: float = 1.0,
             edit_guidance_scale: float | None = None) -> GenerationStats:
    import torch

    out = Path(out)
    stats = GenerationStats(requested=len(items) * images_per_prompt)
    todo: list[tuple[EvalItem, int]] = []
    for it in items:
        if it.source is not None and not (out / "sources" / f"{it.item_id}.png").is_file():
            _save(it.source, out / "sources" / f"{it.item_id}.png")
        for k in range(images_per_prompt):
            p = image_path(out, it.item_id, k)
            if p.is_file() and _readable(p):
                stats.reused += 1
                continue
            if p.is_file():
                stats.regenerated_unreadable += 1
                log.warning("image %s is unreadable; regenerating it", p)
            todo.append((it, k))
    if not todo:
        return stats
    t0 = time.perf_counter()
    bar = progress_bar(total=len(todo), desc="generate", unit="img")
    for kind in ("t2i", "edit"):
        work = [w for w in todo if w[0].kind == kind]
        for s in range(0, len(work), batch_size):
            chunk = work[s:s + batch_size]
            kwargs: dict[str, Any] = dict(
                prompt=[it.prompt for it, _ in chunk], num_inference_steps=num_inference_steps,
                guidance_scale=guidance_scale if kind == "t2i" or edit_guidance_scale is None else edit_guidance_scale,
                num_images_per_prompt=1, output_type="pil",
                generator=[torch.Generator().manual_seed(seed_for(seed, it.item_id, k)) for it, k in chunk],
            )
            if kind == "edit":
                kwargs["image"] = [it.source for it, _ in chunk]
                if image_guidance_scale != 1.0:  # only pipelines that edit take it
                    kwargs["image_guidance_scale"] = image_guidance_scale
            elif height and width:
                kwargs["height"], kwargs["width"] = height, width
            images = pipeline(**kwargs).images
            for (it, k), img in zip(chunk, images, strict=True):
                _save(img if isinstance(img, Image.Image) else Image.fromarray(img), image_path(out, it.item_id, k))
            stats.generated += len(chunk)
            bar.update(len(chunk))
    bar.close()
    stats.seconds = time.perf_counter() - t0
    return stats


def load_images(out: str | Path, item: EvalItem, images_per_prompt: int) -> tuple[list[Image.Image], list[int]]:
    """The images of one item and the indices that are missing (reported, never silently skipped)."""
    imgs, missing = [], []
    for k in range(images_per_prompt):
        p = image_path(Path(out), item.item_id, k)
        if p.is_file() and _readable(p):
            with Image.open(p) as im:
                imgs.append(im.convert("RGB"))
        else:
            missing.append(k)
    return imgs, missing
