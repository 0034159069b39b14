"""Captioned image grids: how people look at ShapesWorld samples, generations and edits."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def image_grid(tiles: Sequence[np.ndarray], captions: Sequence[str] | None = None, cols: int = 8,
               scale: int = 2) -> Image.Image:
    """Tiles (H, W, 3) uint8 upscaled by `scale` (nearest, so pixels stay crisp), with wrapped captions."""
    if not tiles:
        raise ValueError("no tiles to draw")
    captions = list(captions) if captions is not None else [""] * len(tiles)
    h = max(t.shape[0] for t in tiles) * scale
    w = max(t.shape[1] for t in tiles) * scale
    cols = max(1, min(cols, len(tiles)))
    rows = (len(tiles) + cols - 1) // cols
    font = ImageFont.load_default()
    chars = max(6, w // 6)  # the default bitmap font is about 6 px per character
    wrapped = [textwrap.wrap(c, chars)[:4] for c in captions]
    text_h = 11 * max((len(x) for x in wrapped), default=0) + (4 if any(wrapped) else 0)
    pad = 4
    sheet = Image.new("RGB", (cols * (w + pad) + pad, rows * (h + text_h + pad) + pad), (235, 235, 235))
    draw = ImageDraw.Draw(sheet)
    for k, (tile, lines) in enumerate(zip(tiles, wrapped)):
        r, c = divmod(k, cols)
        x, y = pad + c * (w + pad), pad + r * (h + text_h + pad)
        img = Image.fromarray(np.asarray(tile, dtype=np.uint8), "RGB")
        sheet.paste(img.resize((tile.shape[1] * scale, tile.shape[0] * scale), Image.Resampling.NEAREST), (x, y))
        for i, line in enumerate(lines):
            draw.text((x, y + h + 2 + 11 * i), line, fill=(20, 20, 20), font=font)
    return sheet


def side_by_side(a: np.ndarray, b: np.ndarray, gap: int = 2) -> np.ndarray:
    """Source | target in one tile, separated by a dark bar."""
    bar = np.full((a.shape[0], gap, 3), 40, np.uint8)
    return np.concatenate([a, bar, b], axis=1)


def save_png(img: Image.Image, path: str | Path) -> Path:
    """Write atomically (temp name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    img.save(tmp, format="PNG", optimize=True)
    os.replace(tmp, path)
    return path


def dataset_preview(root: str | Path, out: str | Path, n: int = 16, scale: int = 2) -> Path:
    """A grid of the first `n` samples of each kind in a dataset directory (edits as source | target)."""
    from unipic.data.shards import iter_dataset, shard_paths

    tiles, caps = [], []
    for kind in ("t2i", "edit"):
        if not shard_paths(root, kind):
            continue
        for k, rec in enumerate(iter_dataset(root, kind=kind, check_counts=False)):
            if k >= n:
                break
            meta = rec.json()
            if kind == "t2i":
                tiles.append(rec.image("png"))
                caps.append(f"{meta['task']}: {meta['caption']}")
            else:
                tiles.append(side_by_side(rec.image("src.png"), rec.image("tgt.png")))
                caps.append(f"{meta['category']}: {meta['instruction']}")
    if not tiles:
        from unipic.errors import DataError

        raise DataError(f"'{root}' holds no samples to preview")
    return save_png(image_grid(tiles, caps, cols=8, scale=scale), out)
