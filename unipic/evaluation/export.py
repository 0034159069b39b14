"""Export generated images in each benchmark's official layout, so the authors' own scoring scripts can be run
on exactly the images we scored (a cross-check worth doing once per judge/detector change at cluster scale).

- GenEval: `<dir>/<NNNNN>/metadata.jsonl` + `samples/<NNNN>.png` (evaluate_images.py)
- DPG-Bench: `<dir>/<item_id>.png`, the 4 images tiled 2x2 (compute_dpg_bench.py, PIC_NUM=4)
- GEdit-Bench: `<dir>/fullset/<task_type>/<lang>/<key>.png` + `<key>_SRCIMG.png` (test_gedit_score.py)
- ImgEdit: `<dir>/<key>.png` (basic_bench.py)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from unipic.evaluation.generation import EvalItem, load_images


def export_layout(bench: str, items: Sequence[EvalItem], out: Path, images_per_prompt: int, dest: Path) -> int:
    """Write the official layout of `bench` under `dest`; returns the number of image files written."""
    from unipic.evaluation import dpg, gedit, geneval

    dest.mkdir(parents=True, exist_ok=True)
    n = 0
    for i, it in enumerate(items):
        imgs, _ = load_images(out, it, images_per_prompt)
        if not imgs:
            continue
        if bench in ("geneval", "shapes_geneval"):
            geneval.write_layout(dest, i, it.meta["geneval"], imgs)
            n += len(imgs)
        elif bench == "dpg" and len(imgs) == 4:
            dpg.tile(imgs).save(dest / f"{it.item_id}.png")
            n += 1
        elif bench in ("gedit", "shapes_gedit"):
            item = gedit.GEditItem(key=it.meta.get("key", it.item_id), task_type=it.meta.get("gedit_group", it.group),
                                   instruction=it.prompt, language="en", intersection=False, source=it.source)
            gedit.write_layout(dest, item, imgs[0])
            n += 1
        elif bench == "imgedit":
            imgs[0].save(dest / f"{it.meta['key']}.png")
            n += 1
    return n
