"""Resolve a model reference (local folder or s3:// URI) to a ready pipeline, and write its images to disk."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from unipic.logging import get_logger

log = get_logger(__name__)


def resolve_model_dir(model: str | Path, store_cfg=None, cache_dir: str | Path | None = None) -> Path:
    """A local folder as is; an s3:// URI fetched (verified against its manifest) into the local cache."""
    from unipic.storage import materialize

    return Path(materialize(model, store_cfg, cache_dir))


def load_pipeline(
    model: str | Path,
    store_cfg=None,
    cache_dir: str | Path | None = None,
    torch_dtype: torch.dtype | None = None,
):
    from unipic.pipelines.kontext import UniPicKontextPipeline

    folder = resolve_model_dir(model, store_cfg, cache_dir)
    log.info("loading %s", folder)
    index = folder / "model_index.json"
    if index.is_file() and json.loads(index.read_text()).get("_class_name") == "UniPicMetaQueryPipeline":
        from unipic.pipelines.metaquery import UniPicMetaQueryPipeline

        return UniPicMetaQueryPipeline.from_pretrained(folder, store=store_cfg, torch_dtype=torch_dtype)
    return UniPicKontextPipeline.from_pretrained(folder, torch_dtype=torch_dtype)


def _atomic_save_png(image, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)


def save_images(
    images: Sequence[Any],
    out_dir: str | Path,
    labels: Sequence[str] | None = None,
    record: dict[str, Any] | None = None,
    prefix: str = "image",
    grid_first: Any = None,
) -> list[Path]:
    """PIL images -> out_dir/{prefix}-000.png ..., plus grid.png when there are several (with
    `grid_first`, e.g. an edit's source, as its first tile) and images.json (what was asked, written
    last). Each file is written under a temporary name, then renamed."""
    from unipic.training.metrics import image_grid

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, im in enumerate(images):
        path = out / f"{prefix}-{i:03d}.png"
        _atomic_save_png(im, path)
        paths.append(path)
    tiles, tile_labels = list(images), list(labels) if labels is not None else None
    if grid_first is not None:
        tiles = [grid_first.convert("RGB").resize(images[0].size)] + tiles
        tile_labels = ["source"] + tile_labels if tile_labels is not None else None
    if len(tiles) > 1:
        scale = max(1, 128 // max(images[0].size))
        _atomic_save_png(image_grid(tiles, labels=tile_labels, scale=scale), out / "grid.png")
    if record is not None:
        tmp = out / ".images.json.tmp"
        tmp.write_text(json.dumps({**record, "files": [p.name for p in paths]}, indent=2, default=str))
        os.replace(tmp, out / "images.json")
    return paths
