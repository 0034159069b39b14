"""MetaQuery vs the Kontext model it started from, on ShapesWorld, plus UniPic2's Table 2 ablation in miniature.

    .venv/bin/python benchmarks/metaquery_quality.py --work /tmp/mq_bench [--kontext DIR] [--pretrain-steps N]
        [--stage1-steps N] [--stage2-steps N] [--n-eval N]

1. data: a smoke-palette ShapesWorld dataset (generated here unless --data is given);
2. Kontext: --kontext DIR, else the smoke model bootstrapped and pre-trained for --pretrain-steps;
3. MetaQuery stage 1 (align: MLLM + DiT frozen, T2I) from the Kontext model, then stage 2 (connector + DiT,
   T2I + editing) once per edit route: image to both MLLM and DiT (UniPic2), MLLM only (MetaQuery), DiT only;
4. evaluation on unseen samples with the exact ShapesWorld scorers: GenEval-style strict T2I accuracy per task
   (and the graded score), GEdit-style edit success and overall = sqrt(instruction x preservation).

Writes benchmarks/results/metaquery_quality.{json,md} and a sample grid PNG. Every number comes from this run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

os.environ.setdefault("UNIPIC_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = Path(__file__).resolve().parent / "results"
ROUTES = ("both", "mllm", "dit")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def make_data(cfg, out: Path, n_t2i: int, n_edit: int) -> Path:
    from unipic.data.generate import generate_dataset

    if (out / "manifest.json").is_file():
        return out
    shapes = cfg.shapes.model_copy(update={"n_t2i": n_t2i, "n_edit": n_edit, "shard_size": 1024})
    generate_dataset(shapes, out, overwrite=True)
    return out


def make_kontext(cfg, work: Path, data: Path, steps: int) -> Path:
    from unipic.models.bootstrap import bootstrap_base_model
    from unipic.training.pretrain import run_pretrain

    out = work / "kontext"
    if (out / "model_index.json").is_file():
        return out
    base = bootstrap_base_model(cfg.model, work / "kontext-init", overwrite=True)
    pre = cfg.pretrain.model_copy(
        update={
            "steps": steps,
            "dataset": str(data),
            "base_model": str(base),
            "output": str(out),
            "warmup_steps": min(cfg.pretrain.warmup_steps, steps // 4),
            "checkpoint_every": 0,
            "sample_every": 0,
            "edit_ratio": 0.5,
        }
    )
    run_pretrain(pre, work / "kontext-run")
    return out


def continue_kontext(cfg, work: Path, kontext: Path, data: Path, steps: int) -> Path:
    """The fair baseline: the same Kontext model trained for as many more steps as the MetaQuery stages took."""
    from unipic.training.pretrain import run_pretrain

    out = work / f"kontext-plus{steps}"
    if (out / "model_index.json").is_file():
        return out
    pre = cfg.pretrain.model_copy(
        update={
            "steps": steps,
            "dataset": str(data),
            "base_model": str(kontext),
            "output": str(out),
            "warmup_steps": min(20, steps // 5),
            "checkpoint_every": 0,
            "sample_every": 0,
            "edit_ratio": 0.5,
            "task_weights": cfg.metaquery.train.task_weights,  # the same data mix as MetaQuery's stage 2
        }
    )
    run_pretrain(pre, work / f"kontext-plus{steps}-run")
    return out


def train_mq(cfg, work: Path, name: str, init: Path, data: Path, stage: int, steps: int, route: str) -> Path:
    from unipic.training.metaquery import run_metaquery

    out = work / name
    if (out / "model_index.json").is_file():
        return out
    train = cfg.metaquery.train.model_copy(
        update={
            "stage": stage,
            "steps": steps,
            "init_from": str(init),
            "dataset": str(data),
            "output": str(out),
            "checkpoint_every": 0,
            "sample_every": 0,
            "warmup_steps": min(20, steps // 5),
        }
    )
    mq = cfg.metaquery.model_copy(update={"image_to": route, "train": train})
    t0 = time.perf_counter()
    res = run_metaquery(mq, work / f"{name}-run")
    log(
        f"{name}: {steps} steps in {time.perf_counter() - t0:.0f} s, final loss "
        f"{res.train.losses.get(res.train.last_step):.4f}"
    )
    return out


def eval_sets(cfg, n: int):
    from unipic.data.shapes import make_edit_sample, make_t2i_sample

    shapes = cfg.shapes
    offset = 10_000_000  # indices far beyond any training set: unseen samples of the same distribution
    t2i = [make_t2i_sample(shapes, offset + i) for i in range(n * len(shapes.t2i_tasks))]
    edits = [make_edit_sample(shapes, offset + i) for i in range(n * len(shapes.edit_categories))]
    return t2i, edits


@torch.no_grad()
def evaluate(pipe, t2i, edits, steps: int, guidance: float, batch: int = 32, **call: Any) -> dict[str, Any]:
    from PIL import Image

    from unipic.data.shapes import render, score_edit, score_t2i

    t2i_images, edit_images = [], []
    for i in range(0, len(t2i), batch):
        chunk = t2i[i : i + batch]
        gens = [torch.Generator().manual_seed(7 + i + k) for k in range(len(chunk))]
        t2i_images += pipe(
            [s.caption for s in chunk], num_inference_steps=steps, guidance_scale=guidance, generator=gens
        ).images
    sources = [Image.fromarray(render(s.source)) for s in edits]
    for i in range(0, len(edits), batch):
        chunk = edits[i : i + batch]
        gens = [torch.Generator().manual_seed(9 + i + k) for k in range(len(chunk))]
        edit_images += pipe(
            [s.instruction for s in chunk],
            image=sources[i : i + batch],
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=gens,
            **call,
        ).images
    ts = score_t2i([np.asarray(im) for im in t2i_images], [s.spec for s in t2i]) if t2i else []
    es = score_edit(
        [np.asarray(im) for im in sources], [np.asarray(im) for im in edit_images], [s.spec for s in edits]
    )
    tasks = sorted({s.task for s in ts})
    cats = sorted({s.category for s in es})
    per_task = {t: float(np.mean([s.correct for s in ts if s.task == t])) for t in tasks}
    nan = float("nan")
    per_cat = {c: float(np.mean([s.success for s in es if s.category == c])) for c in cats}
    return {
        "t2i_accuracy": float(np.mean(list(per_task.values()))) if ts else nan,
        "t2i_score": float(np.mean([s.score for s in ts])) if ts else nan,
        "t2i_per_task": per_task,
        "edit_success": float(np.mean([s.success for s in es])),
        "edit_overall": float(np.mean([s.overall for s in es])),
        "edit_instruction": float(np.mean([s.instruction_satisfied for s in es])),
        "edit_preservation": float(np.mean([s.preservation for s in es])),
        "edit_per_category": per_cat,
        "n_t2i": len(ts),
        "n_edit": len(es),
        "_images": (t2i_images[:8] or edit_images[:8], sources[:8], edit_images[:8]),
    }


def write_report(rows: dict[str, dict[str, Any]], meta: dict[str, Any]) -> None:
    from unipic.training.metrics import image_grid

    RESULTS.mkdir(parents=True, exist_ok=True)
    images, labels = [], []
    for name, r in rows.items():
        t2i, srcs, outs = r.pop("_images")
        images += list(t2i[:4]) + [im for pair in zip(srcs[:2], outs[:2], strict=True) for im in pair]
        labels += [name[:14]] * 4 + ["src", "edit"] * 2
    image_grid(images, cols=8, labels=labels, scale=3).save(RESULTS / "metaquery_quality_samples.png")
    (RESULTS / "metaquery_quality.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    lines = [
        "# MetaQuery vs Kontext on ShapesWorld (smoke preset, CPU)",
        "",
        f"Run {meta['date']} on {meta['machine']} (load average at start {meta['load_avg']}).",
        f"Kontext: {meta['kontext']}; MetaQuery stage 1: {meta['stage1_steps']} steps (align, MLLM + DiT frozen), "
        f"stage 2: {meta['stage2_steps']} steps per route (connector + DiT, T2I + edit, MLLM frozen); "
        f"batch {meta['batch_size']}. Eval: {meta['n_t2i']} T2I prompts, {meta['n_edit']} edits (unseen samples), "
        f"{meta['eval_steps']} Euler steps, CFG {meta['guidance']}.",
        "",
        "| model | edit source to | T2I strict acc | T2I graded | edit success | edit overall | instruction | "
        "preservation |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['route']} | {r['t2i_accuracy']:.3f} | {r['t2i_score']:.3f} | "
            f"{r['edit_success']:.3f} | {r['edit_overall']:.3f} | {r['edit_instruction']:.3f} | "
            f"{r['edit_preservation']:.3f} |"
        )
    lines += [
        "",
        "Per T2I task (strict accuracy):",
        "",
        "| model | " + " | ".join(next(iter(rows.values()))["t2i_per_task"]) + " |",
        "|---|" + "---|" * len(next(iter(rows.values()))["t2i_per_task"]),
    ]
    for name, r in rows.items():
        if r["t2i_per_task"]:
            lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in r["t2i_per_task"].values()) + " |")
    lines += [
        "",
        "Per edit category (success):",
        "",
        "| model | " + " | ".join(next(iter(rows.values()))["edit_per_category"]) + " |",
        "|---|" + "---|" * len(next(iter(rows.values()))["edit_per_category"]),
    ]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in r["edit_per_category"].values()) + " |")
    lines += ["", "![samples](metaquery_quality_samples.png)", "", meta.get("notes", "")]
    (RESULTS / "metaquery_quality.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/metaquery_bench"))
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--data", type=Path)
    ap.add_argument("--kontext", type=Path)
    ap.add_argument("--n-t2i", type=int, default=8000)
    ap.add_argument("--n-edit", type=int, default=8000)
    ap.add_argument("--pretrain-steps", type=int, default=400)
    ap.add_argument("--stage1-steps", type=int, default=150)
    ap.add_argument("--stage2-steps", type=int, default=150)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--n-eval", type=int, default=8, help="prompts per T2I task and per edit category")
    ap.add_argument("--eval-steps", type=int, default=20)
    ap.add_argument("--routes", default=",".join(ROUTES))
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads (1 is far faster when other jobs oversubscribe the cores)",
    )
    ap.add_argument(
        "--baseline",
        action="store_true",
        help="also train the Kontext model for stage1 + stage2 more steps (same-budget baseline)",
    )
    ap.add_argument("--notes", default="")
    args = ap.parse_args()

    from unipic.config import load_config
    from unipic.device import resolve_device
    from unipic.pipelines.metaquery import load_pipeline

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.preset)
    trainer = {"batch_size": args.batch_size, "threads": args.threads}
    cfg = cfg.model_copy(
        update={
            "pretrain": cfg.pretrain.model_copy(update=trainer),
            "metaquery": cfg.metaquery.model_copy(
                update={"train": cfg.metaquery.train.model_copy(update=trainer)}
            ),
        }
    )
    args.work.mkdir(parents=True, exist_ok=True)
    load_avg = os.getloadavg()[0]
    t0 = time.perf_counter()
    data = args.data or make_data(cfg, args.work / "data", args.n_t2i, args.n_edit)
    log(f"data at {data}")
    kontext = args.kontext or make_kontext(cfg, args.work, data, args.pretrain_steps)
    log(f"kontext at {kontext}")
    s1 = train_mq(cfg, args.work, "mq-stage1", kontext, data, 1, args.stage1_steps, "both")
    routes = [r for r in args.routes.split(",") if r]
    models = {"kontext": (kontext, "dit")}
    if args.baseline:
        extra = args.stage1_steps + args.stage2_steps
        models[f"kontext +{extra} steps"] = (continue_kontext(cfg, args.work, kontext, data, extra), "dit")
    models["mq stage 1"] = (s1, "both")
    for route in routes:
        models[f"mq stage 2 ({route})"] = (
            train_mq(cfg, args.work, f"mq-stage2-{route}", s1, data, 2, args.stage2_steps, route),
            route,
        )
    t2i, edits = eval_sets(cfg, args.n_eval)
    rows: dict[str, dict[str, Any]] = {}
    for name, (path, route) in models.items():
        pipe = load_pipeline(path).to(resolve_device())
        te = time.perf_counter()
        rows[name] = {
            "route": route,
            "path": str(path),
            **evaluate(pipe, t2i, edits, args.eval_steps, cfg.metaquery.guidance_scale),
        }
        log(
            f"eval {name}: t2i {rows[name]['t2i_accuracy']:.3f}, edit {rows[name]['edit_success']:.3f} "
            f"({time.perf_counter() - te:.0f} s)"
        )
    both = "mq stage 2 (both)"
    if both in models:
        pipe = load_pipeline(models[both][0]).to(resolve_device())
        for route in ("mllm", "dit"):
            name = f"{both}, inference {route} only"
            rows[name] = {
                "route": f"{route} (switch at inference)",
                "path": str(models[both][0]),
                **evaluate(pipe, [], edits, args.eval_steps, cfg.metaquery.guidance_scale, image_to=route),
            }
            log(f"eval {name}: edit {rows[name]['edit_success']:.3f}")
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}"
        + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""),
        "load_avg": round(load_avg, 1),
        "preset": args.preset,
        "kontext": str(args.kontext)
        if args.kontext
        else f"smoke model pre-trained here for {args.pretrain_steps} steps (edit ratio 0.5)",
        "stage1_steps": args.stage1_steps,
        "stage2_steps": args.stage2_steps,
        "batch_size": args.batch_size,
        "n_t2i": len(t2i),
        "n_edit": len(edits),
        "eval_steps": args.eval_steps,
        "threads": args.threads,
        "guidance": cfg.metaquery.guidance_scale,
        "wall_s": round(time.perf_counter() - t0),
        "notes": args.notes,
    }
    write_report(rows, meta)
    log(f"wrote {RESULTS / 'metaquery_quality.md'}")


if __name__ == "__main__":
    main()
