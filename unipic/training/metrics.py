"""Where time and memory go, written down: time spans, a JSONL metrics log, a loss-curve PNG, image grids."""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil

from unipic.logging import get_logger

log = get_logger(__name__)


def rss_gb() -> float:
    """Resident memory of this process (GiB)."""
    return psutil.Process(os.getpid()).memory_info().rss / 2**30


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (GiB), from the kernel's high-water mark."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class Spans:
    """Accumulates wall time per named span (forward_backward, optimizer, data, ...) between reads."""

    def __init__(self) -> None:
        self._total: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self._total[name] += time.perf_counter() - start

    def pop(self) -> dict[str, float]:
        out = dict(self._total)
        self._total.clear()
        return out


class MetricsLog:
    """Append-only JSONL of metric records, one per logged step.

    On resume the records after the checkpoint's step are dropped, so the file (and the loss curve)
    reads as one continuous run.
    """

    def __init__(self, path: Path, enabled: bool = True):
        self.path = path
        self.enabled = enabled
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)

    def truncate_after(self, step: int) -> None:
        if not (self.enabled and self.path.exists()):
            return
        keep = [line for line in self.path.read_text().splitlines() if line and json.loads(line).get("step", 0) <= step]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(line + "\n" for line in keep))
        tmp.replace(self.path)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        with self.path.open("a") as fh:
            fh.write(json.dumps(clean, sort_keys=True) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]


def plot_curves(records: Sequence[dict[str, Any]], out: Path, keys: Sequence[str] = ("loss", "lr", "grad_norm")) -> Path | None:
    """Loss / lr / grad-norm against step, one panel each, as a PNG people can glance at."""
    keys = [k for k in keys if any(r.get(k) is not None for r in records)]
    if not records or not keys:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        pts = [(r["step"], r[key]) for r in records if r.get(key) is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.2)
        ax.set_title(key)
        ax.set_xlabel("step")
        if key == "loss" and all(p[1] > 0 for p in pts):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)
    return out


def image_grid(images: Sequence[Any], cols: int | None = None, labels: Sequence[str] | None = None, scale: int = 1):
    """Tile PIL images into one picture, optionally upscaled (nearest) and captioned underneath."""
    from PIL import Image, ImageDraw

    if not images:
        raise ValueError("image_grid needs at least one image")
    cols = cols or min(len(images), 8)
    rows = math.ceil(len(images) / cols)
    w, h = images[0].size
    w, h = w * scale, h * scale
    label_h = 12 if labels else 0
    grid = Image.new("RGB", (cols * w, rows * (h + label_h)), "white")
    draw = ImageDraw.Draw(grid)
    for i, img in enumerate(images):
        x, y = (i % cols) * w, (i // cols) * (h + label_h)
        grid.paste(img.convert("RGB").resize((w, h), Image.NEAREST), (x, y))
        if labels:
            draw.text((x + 1, y + h), str(labels[i])[: max(4, w // 6)], fill="black")
    return grid
