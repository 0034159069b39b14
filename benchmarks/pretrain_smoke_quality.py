"""Smoke-preset quality run: pre-train the 9 M Kontext DiT on ShapesWorld for a CPU budget, then compare the
ShapesWorld GenEval twin (per task) and the GEdit twin (edit correctness) against the untrained model.

    .venv/bin/python benchmarks/pretrain_smoke_quality.py [--steps 300] [--batch 64] [--n-per-task 8]

Writes benchmarks/results/pretrain_smoke_quality.{json,md} and copies the last sample grid and the loss
curve next to them (pretrain_smoke_samples.png, pretrain_smoke_loss.png). Takes ~30 CPU-minutes on 2 idle
cores at the defaults (notes/shapesworld_learnability.md §3: colour is learned first, composition is not).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from pretrain_common import RESULTS, environment, write_results


def judged_rows(eval_dir: Path, benchmark: str) -> list[dict]:
    """The per-image verdicts an evaluation wrote (`<benchmark>/rows.jsonl`)."""
    return [json.loads(x) for x in (eval_dir / benchmark / "rows.jsonl").read_text().splitlines() if x]


def probe_view(eval_dir: Path) -> dict[str, float]:
    """The probe's numbers (notes/shapesworld_learnability.md §3, §6) from an evaluation's per-image rows:
    for "a <colour> <shape>" prompts, exactly one object of the right colour ("single colour") and the strict
    exact object; for recolour edits, strict success and the right colour at the right place (instruction)."""
    t2i, edits = judged_rows(eval_dir, "shapes_geneval"), judged_rows(eval_dir, "shapes_gedit")
    colour_ok = []
    rows = [r for r in t2i if r["tag"] == "colors"]
    for r in rows:
        colour = r["prompt"].split()[1]
        objects = sum(len(v) for k, v in r["details"].items() if " " not in k)
        coloured = sum(len(v) for k, v in r["details"].items() if k.startswith(colour + " "))
        colour_ok.append(objects == 1 and coloured == 1)
    rec = [r for r in edits if r["group"] == "recolor"]
    mean = lambda xs: float(sum(xs) / len(xs)) if xs else float("nan")  # noqa: E731
    return {"colors_n": len(rows), "single_colour": mean(colour_ok), "exact_object": mean([r["strict"] for r in rows]),
            "recolor_n": len(rec), "recolor_success": mean([r["exact_success"] for r in rec]),
            "recolor_right_colour_right_place": mean([r["exact_instruction"] for r in rec])}


COMPOSITION = ("two_object", "counting", "position", "color_attr")


def composition_view(eval_dir: Path) -> dict[str, float]:
    """Composition read apart from shape fidelity, per composition task: the strict rule, the arrangement (count,
    colours, relation; shapes ignored) and the arrangement against a swapped prompt of the same task (the control)."""
    from unipic.evaluation.benchmarks import arrangement_with_control

    rows = judged_rows(eval_dir, "shapes_geneval")
    real, control = arrangement_with_control(rows)
    out: dict[str, float] = {}
    for task in COMPOSITION:
        strict = [bool(r["strict"]) for r in rows if r["tag"] == task]
        if strict:
            out.update({f"{task}_strict": sum(strict) / len(strict), f"{task}_arrangement": real[task],
                        f"{task}_arrangement_control": control[task]})
    return out | relation_view([r for r in rows if r["tag"] == "position"])


def composition_grid(eval_dir: Path, out: Path, per_task: int = 6) -> Path | None:
    """Composition prompts with both readings under each image: the first images whose arrangement is right and
    the first whose arrangement is wrong, per composition task (the strict rule is wrong on almost all of them)."""
    import numpy as np
    from PIL import Image

    from unipic.data.shapes.grid import image_grid, save_png

    rows = judged_rows(eval_dir, "shapes_geneval")
    tiles, captions = [], []
    for task in COMPOSITION:
        mine = [r for r in rows if r["tag"] == task]
        right = [r for r in mine if r["arrangement"]][:per_task // 2]
        for r in right + [r for r in mine if not r["arrangement"]][:per_task - len(right)]:
            img = Image.open(eval_dir / "shapes_geneval/images" / r["item_id"] / f"{r['k']:02d}.png")
            tiles.append(np.asarray(img.convert("RGB")))
            captions.append(f"{r['prompt']} | arrangement {'ok' if r['arrangement'] else 'no'}, strict "
                            f"{'ok' if r['strict'] else 'no'}")
    return save_png(image_grid(tiles, captions, cols=per_task, scale=4), out) if tiles else None


OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


def relation_view(rows: list[dict]) -> dict[str, float]:
    """For `position` images with the right pair (two objects, the right colours), how often the asked relation
    holds and how often its opposite does: a model that ignores the relation words scores both alike."""
    from unipic.data.shapes.score import arrangement_ok
    from unipic.data.shapes.t2i import T2ISpec

    asked = opposite = pairs = 0
    for r in rows:
        spec = T2ISpec.model_validate(r["spec"])
        unrelated = spec.model_copy(update={"relation": None})
        if not arrangement_ok(r["detected"], unrelated):
            continue
        flipped = spec.model_copy(update={"relation": spec.relation.model_copy(
            update={"relation": OPPOSITE[spec.relation.relation]})})
        pairs += 1
        asked += arrangement_ok(r["detected"], spec)
        opposite += arrangement_ok(r["detected"], flipped)
    n = max(len(rows), 1)
    return {"position_right_pair": pairs / n, "position_asked_relation": asked / n,
            "position_opposite_relation": opposite / n}


def train_split_eval(cfg, work: Path, model: str, n: int, image_guidance: float) -> dict:
    """The recipes protocol: training compositions, n prompts per cell at the benchmark's seed plus 2n at a second
    seed, pooled (3n per cell) so that recipes a few points apart can be told apart."""
    from unipic.evaluation import evaluate
    from unipic.evaluation.gate import flat_metrics

    gen = cfg.evaluation.generation
    out: dict = {"split": "train", "protocol": f"evaluation.split=train, n={n} at seed 1234 + n={2 * n} at seed 4321, "
                 f"1 image per prompt, {gen.num_inference_steps} Euler steps, CFG {gen.guidance_scale}"
                 f"{'' if gen.edit_guidance_scale is None else f' (edits {gen.edit_guidance_scale})'}, "
                 f"image guidance {image_guidance} on edits"}
    pooled: dict[str, float] = {}
    for seed, k in ((1234, n), (4321, 2 * n)):
        ecfg = cfg.evaluation.model_copy(update={
            "split": "train", "seed": seed, "n_per_task": k,
            "generation": cfg.evaluation.generation.model_copy(update={"image_guidance_scale": image_guidance})})
        d = work / f"eval_trained_trainsplit_{seed}"
        out[f"metrics_n{k}"] = flat_metrics(evaluate(ecfg, cfg.shapes, d, model=model,
                                                     benchmarks=["shapes_geneval", "shapes_gedit"]))
        view = probe_view(d) | composition_view(d)
        out[f"probe_view_n{k}"] = view
        for key, v in view.items():
            pooled[key] = pooled.get(key, 0.0) + (v if key.endswith("_n") else v * k / (3 * n))
    out[f"probe_view_n{3 * n}"] = pooled
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=None, help="default: the smoke preset's pretrain.steps")
    ap.add_argument("--batch", type=int, default=None, help="default: the smoke preset's pretrain.batch_size")
    ap.add_argument("--edit-ratio", type=float, default=None,
                    help="a constant edit ratio instead of the smoke preset's (its edit_phases curriculum)")
    ap.add_argument("--train-split-eval", action="store_true",
                    help="also evaluate the trained model on training compositions (evaluation.split=train), "
                         "n-per-task at seed 1234 plus twice that at seed 4321, pooled")
    ap.add_argument("--image-guidance", type=float, default=1.0,
                    help="image guidance on edits in the train-split evaluation (evaluation.generation."
                         "image_guidance_scale)")
    ap.add_argument("--n-t2i", type=int, default=8000)
    ap.add_argument("--n-edit", type=int, default=4000)
    ap.add_argument("--n-per-task", type=int, default=8)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--eval-only", type=Path, default=None, metavar="MODEL_DIR",
                    help="skip training: evaluate this trained model with the train-split protocol under the given "
                         "--set / --image-guidance (sampling settings) and write pretrain_smoke_quality_eval_TAG.json")
    ap.add_argument("--tag", default="settings", help="name of the --eval-only result file")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a config override on top of the smoke preset, e.g. pretrain.schedule=wsd (repeatable)")
    args = ap.parse_args()

    from unipic.config import load_config
    from unipic.data.generate import generate_dataset
    from unipic.evaluation import evaluate
    from unipic.evaluation.gate import flat_metrics
    from unipic.models.bootstrap import bootstrap_base_model
    from unipic.training.pretrain import run_pretrain

    work = args.work or Path(tempfile.mkdtemp(prefix="smoke-quality-"))
    cfg = load_config("smoke", [f"evaluation.n_per_task={args.n_per_task}",
                                "evaluation.generation.images_per_prompt=1", *args.overrides])
    if args.eval_only is not None:
        res = train_split_eval(cfg, work, str(args.eval_only), args.n_per_task, args.image_guidance)
        res.update(model=str(args.eval_only), overrides=args.overrides, environment=environment())
        out = RESULTS / f"pretrain_smoke_quality_eval_{args.tag}.json"
        out.write_text(json.dumps(res, indent=1))
        composition_grid(work / "eval_trained_trainsplit_1234", RESULTS / f"pretrain_smoke_composition_{args.tag}.png")
        print(json.dumps(res[f"probe_view_n{3 * args.n_per_task}"], indent=1))
        return
    data, base = work / "data", work / "base"
    if not (data / "manifest.json").exists():
        generate_dataset(cfg.shapes.model_copy(update={"n_t2i": args.n_t2i, "n_edit": args.n_edit}), str(data))
    if not (base / "model_index.json").exists():
        bootstrap_base_model(cfg.model, base, overwrite=True)
    benches = ["shapes_geneval", "shapes_gedit"]
    t0 = time.time()
    before = flat_metrics(evaluate(cfg.evaluation, cfg.shapes, work / "eval_base", model=str(base), benchmarks=benches))
    eval_s = time.time() - t0
    steps = args.steps or cfg.pretrain.steps
    batch = args.batch or cfg.pretrain.batch_size
    override = {} if args.edit_ratio is None else {"edit_ratio": args.edit_ratio, "edit_phases": []}
    pcfg = cfg.pretrain.model_copy(update={
        "dataset": str(data), "base_model": str(base), "output": str(work / "model"), "steps": steps,
        "batch_size": batch, **override, "warmup_steps": min(cfg.pretrain.warmup_steps, steps // 5),
        "checkpoint_every": max(1, steps // 3), "sample_every": max(1, steps // 3)})
    t0 = time.time()
    res = run_pretrain(pcfg, work / "run")
    train_s = time.time() - t0
    after = flat_metrics(evaluate(cfg.evaluation, cfg.shapes, work / "eval_trained", model=res.model,
                                  benchmarks=benches))
    if args.train_split_eval:
        (RESULTS / "pretrain_smoke_quality_trainsplit.json").write_text(json.dumps(
            train_split_eval(cfg, work, res.model, args.n_per_task, args.image_guidance), indent=1))
        composition_grid(work / "eval_trained_trainsplit_1234", RESULTS / "pretrain_smoke_composition.png")
    keys = sorted(k for k in set(before) | set(after) if k.startswith(("shapes_geneval", "shapes_gedit")))
    rows = [{"metric": k, "untrained": before.get(k), "trained": after.get(k)} for k in keys]
    grids = res.train.sample_grids
    if grids:
        shutil.copy(grids[-1], RESULTS / "pretrain_smoke_samples.png")
    if res.train.curve_png:
        shutil.copy(res.train.curve_png, RESULTS / "pretrain_smoke_loss.png")
    t = res.train
    edits = pcfg.edit_schedule()
    payload = {"steps": t.last_step, "batch": batch, "edit_batch_size": pcfg.edit_batch_size or batch, "ema_decay": pcfg.ema_decay,
               "edit_schedule": edits, "lr_schedule": pcfg.schedule, "overrides": args.overrides,
               "task_weights": pcfg.task_weights, "train_s": train_s,
               "eval_s_untrained": eval_s, "final_loss": t.losses.get(t.last_step), "first_loss": t.losses.get(1),
               "metrics_untrained": before, "metrics_trained": after,
               "probe_view_heldout": probe_view(work / "eval_trained") | composition_view(work / "eval_trained"),
               "work_dir": str(work),
               "environment": environment()}
    notes = [f"{t.last_step} steps at batch {batch} (edit ratio {edits} as (end step, ratio) phases, "
             f"{pcfg.schedule} lr, task weights "
             f"{pcfg.task_weights or 'uniform'}) in {train_s / 60:.1f} min "
             f"wall; loss {t.losses.get(1):.3f} -> {t.losses.get(t.last_step):.3f}",
             f"{args.n_per_task} prompts per task / edit category, 1 image each, held-out compositions, "
             f"{cfg.evaluation.generation.num_inference_steps} Euler steps, CFG {cfg.evaluation.generation.guidance_scale}",
             "sample grid: pretrain_smoke_samples.png; loss curve: pretrain_smoke_loss.png"]
    out = write_results("pretrain_smoke_quality", payload, rows, notes)
    print(out.read_text())


if __name__ == "__main__":
    main()
