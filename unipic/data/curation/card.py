"""The dataset card: what went in, what came out, why things were rejected, and what the data looks like.

Written next to the data (README.md + two PNGs), so people look at the pictures rather than read logs.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unipic.data.curation.output import SIGNAL_COLUMNS
from unipic.data.curation.pipeline import CurationReport


def plot_signal_histograms(index: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [c for c in SIGNAL_COLUMNS if c in index and index[c].notna().any()]
    n = max(len(cols), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 2.6), squeeze=False)
    for ax, col in zip(axes[0], cols, strict=False):
        for kind, grp in index.groupby("kind"):
            vals = grp[col].dropna()
            if len(vals):
                ax.hist(vals, bins=30, alpha=0.6, label=str(kind))
        ax.set_title(col, fontsize=9)
        ax.tick_params(labelsize=7)
    if cols:
        axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def sample_grid(samples: list[tuple[np.ndarray, str]], path: Path, cell: int = 96) -> Path | None:
    """A grid of (image, label) cells; edits show source|target side by side in one cell."""
    from PIL import Image, ImageDraw

    if not samples:
        return None
    cols = min(8, len(samples))
    rows = math.ceil(len(samples) / cols)
    label_h = 14
    grid = Image.new("RGB", (cols * cell, rows * (cell + label_h)), "white")
    draw = ImageDraw.Draw(grid)
    for i, (pixels, label) in enumerate(samples):
        im = Image.fromarray(pixels)
        small = max(im.size) < cell
        im.thumbnail((cell, cell), Image.Resampling.NEAREST if small else Image.Resampling.BILINEAR)
        x, y = (i % cols) * cell, (i // cols) * (cell + label_h)
        grid.paste(im, (x + (cell - im.width) // 2, y + (cell - im.height) // 2))
        draw.text((x + 2, y + cell), label[: cell // 6], fill="black")
    grid.save(path)
    return path


def _table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def write_card(out_dir: Path, report: CurationReport, index: pd.DataFrame,
               samples: list[tuple[np.ndarray, str]], extra: dict[str, Any] | None = None) -> Path:
    card_dir = out_dir / "card"
    card_dir.mkdir(parents=True, exist_ok=True)
    plot_signal_histograms(index, card_dir / "signals.png")
    grid = sample_grid(samples, card_dir / "samples.png")
    (out_dir / "curation_report.json").write_text(json.dumps(report.model_dump(), indent=2, sort_keys=True))
    stats = []
    for col in SIGNAL_COLUMNS:
        vals = index[col].dropna() if col in index else pd.Series(dtype=float)
        if len(vals):
            stats.append((col, len(vals), f"{vals.min():.4g}", f"{vals.median():.4g}", f"{vals.max():.4g}"))
    tasks = sorted(set(report.in_by_task) | set(report.out_by_task))
    lines = [
        "# Curated dataset",
        "",
        f"**{report.n_out}** of **{report.n_in}** samples kept ({report.n_rejected} rejected).",
        "",
        "## Per task",
        _table([(t, report.in_by_task.get(t, 0), report.out_by_task.get(t, 0)) for t in tasks],
               ("task", "in", "out")),
        "",
        "## Rejections by reason",
        _table(list(report.rejected.items()) or [("(none)", 0)], ("reason", "count")),
        "",
        "## Signals",
        _table(stats, ("signal", "n", "min", "median", "max")),
        "",
        "![signal histograms](card/signals.png)",
        "",
    ]
    if grid:
        lines += ["## Samples", "", "![samples](card/samples.png)", ""]
    if extra:
        blob = json.dumps(extra, indent=2, sort_keys=True, default=str)
        lines += ["## Lineage", "", "```json", blob, "```", ""]
    path = out_dir / "README.md"
    path.write_text("\n".join(lines))
    (card_dir / "index.html").write_text(
        "<!doctype html><meta charset=utf-8><title>Curated dataset</title>"
        "<body style='font-family:sans-serif;max-width:60em'>"
        f"<pre>{html.escape(path.read_text())}</pre>"
        "<img src='signals.png' style='max-width:100%'><br>"
        + ("<img src='samples.png' style='max-width:100%'>" if grid else "")
    )
    return path
