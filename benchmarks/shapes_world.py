"""ShapesWorld benchmark: generation throughput, detector throughput and accuracy (clean and perturbed).

    .venv/bin/python benchmarks/shapes_world.py [--quick]

Writes benchmarks/results/shapes_world.{json,md} and one sample grid per T2I task and edit category to
docs/images/shapes_world_{t2i,edit}_<name>.png. Runs in about a minute on 2 shared cores (--quick: seconds).

Accuracy has two readings:
- `t2i_correct`: the GenEval-style strict judgement on a ground-truth render (what a reward or judge sees);
- `exact_scene`: every object's shape, colour and size class and centre (within 3 % of the canvas) recovered,
  plus the background.
Perturbations model what a generator's output might carry: Gaussian noise (sigma in 0-255 units), Gaussian blur
(PIL radius) and JPEG re-encoding (quality).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("UNIPIC_NO_PROGRESS", "1")

from unipic.config.data import EDIT_CATEGORIES, T2I_TASKS, ShapesConfig  # noqa: E402
from unipic.data.shapes import make_edit_sample, make_t2i_sample, render, score_edit, to_png  # noqa: E402
from unipic.data.shapes.detect import ShapesDetector  # noqa: E402
from unipic.data.shapes.grid import image_grid, save_png, side_by_side  # noqa: E402
from unipic.data.shapes.score import score_t2i_detection  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
IMAGES = ROOT / "docs" / "images"


def noise(sigma: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    def f(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.clip(img.astype(np.float32) + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)
    return f


def blur(radius: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    def f(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius)))
    return f


def jpeg(quality: int) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    def f(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=quality)
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return f


CONDITIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray] | None] = {
    "clean": None,
    "noise_s4": noise(4),
    "noise_s8": noise(8),
    "blur_r0.5": blur(0.5),
    "blur_r1": blur(1.0),
    "jpeg_q90": jpeg(90),
    "jpeg_q75": jpeg(75),
}


def _rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else float("inf")


def bench_generation(size: int, n_t2i: int, n_edit: int) -> dict[str, float]:
    cfg = ShapesConfig(image_size=size)
    t = time.perf_counter()
    for i in range(n_t2i):
        to_png(render(make_t2i_sample(cfg, i).scene))
    t2i_s = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(n_edit):
        e = make_edit_sample(cfg, i)
        to_png(render(e.source))
        to_png(render(e.target))
    edit_s = time.perf_counter() - t
    return {"t2i_images_per_s": _rate(n_t2i, t2i_s), "edit_pairs_per_s": _rate(n_edit, edit_s),
            "n_t2i": n_t2i, "n_edit": n_edit}


def _exact(scene, det, tol: float) -> bool:
    want = sorted((o.shape, o.color, o.size) for o in scene.objects)
    got = sorted((o.shape, o.color, o.size) for o in det.objects)
    if want != got or det.background != scene.background:
        return False
    return all(any((d.shape, d.color) == (o.shape, o.color)
                   and np.hypot(d.center[0] - o.center[0], d.center[1] - o.center[1]) <= tol for d in det.objects)
               for o in scene.objects)


def bench_detector(size: int, n: int, n_edit: int) -> dict[str, dict[str, float]]:
    cfg = ShapesConfig(image_size=size)
    detector = ShapesDetector()
    samples = [make_t2i_sample(cfg, i) for i in range(n)]
    edits = [make_edit_sample(cfg, i) for i in range(n_edit)]
    clean = [render(s.scene) for s in samples]
    out: dict[str, dict[str, float]] = {}
    tol = max(1.5, 0.03 * size)
    for name, perturb in CONDITIONS.items():
        rng = np.random.default_rng(0)
        images = [perturb(img, rng) if perturb else img for img in clean]
        t = time.perf_counter()
        dets = detector.detect_batch(images)
        seconds = time.perf_counter() - t
        correct = [score_t2i_detection(d, s.spec).correct for d, s in zip(dets, samples)]
        exact = [_exact(s.scene, d, tol) for s, d in zip(samples, dets)]
        edit_src = [render(e.source) for e in edits]
        edit_out = [perturb(render(e.target), rng) if perturb else render(e.target) for e in edits]
        edit_ok = [s.success for s in score_edit(edit_src, edit_out, [e.spec for e in edits], detector)]
        out[name] = {
            "images_per_s": _rate(n, seconds),
            "ms_per_image": round(1000 * seconds / n, 2),
            "t2i_correct": round(float(np.mean(correct)), 4),
            "exact_scene": round(float(np.mean(exact)), 4),
            "edit_success": round(float(np.mean(edit_ok)), 4),
            "cleanliness": round(float(np.mean([d.cleanliness for d in dets])), 3),
            "n": n,
            "n_edit": n_edit,
        }
    return out


def write_grids(size: int = 64, per: int = 8) -> list[str]:
    written = []
    for task in T2I_TASKS:
        cfg = ShapesConfig(image_size=size, t2i_tasks=[task])
        samples = [make_t2i_sample(cfg, i) for i in range(per)]
        img = image_grid([render(s.scene) for s in samples], [s.caption for s in samples], cols=per, scale=2)
        written.append(str(save_png(img, IMAGES / f"shapes_world_t2i_{task}.png").relative_to(ROOT)))
    for cat in EDIT_CATEGORIES:
        cfg = ShapesConfig(image_size=size, edit_categories=[cat])
        edits = [make_edit_sample(cfg, i) for i in range(per // 2)]
        tiles = [side_by_side(render(e.source), render(e.target)) for e in edits]
        img = image_grid(tiles, [e.instruction for e in edits], cols=per // 2, scale=2)
        written.append(str(save_png(img, IMAGES / f"shapes_world_edit_{cat}.png").relative_to(ROOT)))
    return written


def markdown(results: dict) -> str:
    env = results["environment"]
    lines = [
        "# ShapesWorld benchmark",
        "",
        f"Run {results['created_at']} on {env['cpus']} CPU cores ({env['machine']}, Python {env['python']}), "
        f"load average at start {env['load_avg_start']} (the machine is shared, so throughput is a lower bound). "
        f"Produced by `benchmarks/shapes_world.py`{' --quick' if results['quick'] else ''}.",
        "",
        "## Generation (sample + render + PNG encode, one process)",
        "",
        "| size | T2I images/s | edit pairs/s |",
        "|---|---|---|",
    ]
    for size, g in results["generation"].items():
        lines.append(f"| {size} px | {g['t2i_images_per_s']} | {g['edit_pairs_per_s']} |")
    lines += [
        "",
        "## Detector: throughput and accuracy on ground-truth renders",
        "",
        "`t2i_correct`: strict GenEval-style judgement of the render against its own prompt; `exact_scene`: every "
        "object's shape, colour, size class and centre (within 3 % of the canvas) and the background recovered; "
        "`edit_success`: ground-truth edit targets (perturbed) judged against clean sources; `cleanliness`: mean "
        "flatness score (1.0 = flat colours).",
        "",
        "| size | condition | images/s | ms/image | t2i_correct | exact_scene | edit_success | cleanliness |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, conds in results["detector"].items():
        for name, r in conds.items():
            lines.append(f"| {size} px | {name} | {r['images_per_s']} | {r['ms_per_image']} | {r['t2i_correct']:.3f} "
                         f"| {r['exact_scene']:.3f} | {r['edit_success']:.3f} | {r['cleanliness']:.3f} |")
    lines += ["", f"n = {next(iter(next(iter(results['detector'].values())).values()))['n']} T2I images per cell "
              "at the smallest size (see the JSON for every n).", "", "## Sample grids", ""]
    lines += [f"- [{Path(p).stem}](../../{p})" for p in results["grids"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sample counts (smoke-test the script)")
    ap.add_argument("--out", default=str(RESULTS), help="results directory")
    args = ap.parse_args(argv)
    scale = 0.1 if args.quick else 1.0
    t0 = time.time()
    results: dict = {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
        "environment": {"cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
                        "load_avg_start": round(os.getloadavg()[0], 2)},
        "generation": {},
        "detector": {},
    }
    for size, n_t2i, n_edit in ((64, 600, 300), (256, 150, 80)):
        results["generation"][str(size)] = bench_generation(size, max(5, int(n_t2i * scale)), max(5, int(n_edit * scale)))
    for size, n, n_edit in ((32, 300, 140), (64, 300, 140), (256, 80, 35)):
        results["detector"][str(size)] = bench_detector(size, max(6, int(n * scale)), max(7, int(n_edit * scale)))
    results["grids"] = write_grids()
    results["wall_s"] = round(time.time() - t0, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "shapes_world.quick" if args.quick else "shapes_world"
    for suffix, text in ((".json", json.dumps(results, indent=2) + "\n"), (".md", markdown(results))):
        tmp = out / f"{stem}{suffix}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out / f"{stem}{suffix}")
    print(markdown(results))
    print(f"wrote {out / stem}.json/.md in {results['wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
