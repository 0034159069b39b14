"""The paper's Table 4 in miniature: does each PDTR stage help or hurt the other task?

Rows (all scored by the exact ShapesWorld detector on the same held-out prompts and noise, ODE sampler):
  (a) pre-trained only, (b) editing RL only, (c) T2I RL only, (d) editing RL then T2I RL (PDTR).

    .venv/bin/python benchmarks/rl_table4.py --model PRETRAINED --data DATASET --heldout HELDOUT \
        --work /tmp/table4 --out benchmarks/results/rl_table4 [--set rl.edit.steps=12 ...]

(b), (c) and (d) run `unipic.rl.stages.run_rl_stage` with the given preset and overrides (or come from a finished
stage's lineage record with `--from-stage NAME=JSON`, e.g. a pipeline run's PDTR stages); (a) is the "before"
of (b). Results: <out>.json and <out>.md (the table, with seeds, budgets and wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--heldout", default="")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results/rl_table4"))
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--from-stage", action="append", default=[], metavar="NAME=LINEAGE_JSON",
                    help="take row NAME (b_edit_rl, c_t2i_rl, d_pdtr) from a finished stage's unipic_lineage.json "
                         "or results.json (its before/after scores) instead of training it, e.g. the PDTR stages "
                         "of a pipeline run")
    args = ap.parse_args()

    from unipic.config import load_config
    from unipic.rl.stages import run_rl_stage

    work = Path(args.work)
    rows: dict[str, dict] = {}
    timing: dict[str, float] = {}

    done = {k: json.loads(Path(v).read_text()) for k, v in (x.split("=", 1) for x in args.from_stage)}

    def stage(task: str, base: str, name: str) -> str:
        if name in done:
            rec = done[name]
            rows.setdefault("a_pretrained", rec["before"])
            rows[name], rows[f"{name}/before"] = rec["after"], rec["before"]
            timing[name] = rec.get("seconds", float("nan"))
            return str(rec.get("model") or rec.get("uri") or "")
        sets = list(args.set) + [f"rl.{task}.base_model={base}", f"rl.{task}.dataset={args.data}",
                                 f"rl.{task}.output={work / name / 'model'}"]
        if args.heldout:
            sets.append(f"rl.{task}.eval_dataset={args.heldout}")
        cfg = load_config(args.preset, sets)
        t0 = time.perf_counter()
        res = run_rl_stage(task, getattr(cfg.rl, task), cfg.rl.grpo, work / name, store_cfg=cfg.store)
        timing[name] = time.perf_counter() - t0
        rows.setdefault("a_pretrained", res.before)
        rows[name] = res.after
        rows[f"{name}/before"] = res.before
        return str(res.model)

    edit_model = stage("edit", args.model, "b_edit_rl")
    stage("t2i", args.model, "c_t2i_rl")
    stage("t2i", edit_model, "d_pdtr")
    cfg = load_config(args.preset, list(args.set))
    g = cfg.rl.grpo
    budget = {
        "preset": args.preset, "overrides": args.set, "group_size": g.group_size, "num_steps": g.num_steps,
        "eval_num_steps": g.eval_num_steps, "kl_beta": g.kl_beta, "lora": g.lora.model_dump(),
        "edit": {"rounds": cfg.rl.edit.steps, "prompts_per_round": cfg.rl.edit.prompts_per_round,
                 "eval_prompts": cfg.rl.edit.eval_prompts, "eval_seeds": cfg.rl.edit.eval_seeds,
                 "seed": cfg.rl.edit.seed},
        "t2i": {"rounds": cfg.rl.t2i.steps, "prompts_per_round": cfg.rl.t2i.prompts_per_round,
                "eval_prompts": cfg.rl.t2i.eval_prompts, "eval_seeds": cfg.rl.t2i.eval_seeds, "seed": cfg.rl.t2i.seed},
        "seconds": timing, "loadavg_end": os.getloadavg(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "budget": budget, "model": args.model,
                                                    "data": args.data, "heldout": args.heldout}, indent=2))
    names = {"a_pretrained": "(a) pre-trained only", "b_edit_rl": "(b) editing RL only",
             "c_t2i_rl": "(c) T2I RL only", "d_pdtr": "(d) editing RL -> T2I RL (PDTR)"}
    lines = ["| model | T2I score | T2I exact | T2I cleanliness | edit score | edit strict success | edit cleanliness |",
             "|---|---|---|---|---|---|---|"]
    for key, label in names.items():
        r = rows.get(key) or {}
        t, e = r.get("t2i") or {}, r.get("edit") or {}
        f = lambda d, k: f"{d[k]:.3f}" if k in d else "-"  # noqa: E731
        se = lambda d: f" +- {d['score_se']:.3f}" if "score_se" in d else ""  # noqa: E731
        lines.append(f"| {label} | {f(t, 'score')}{se(t)} | {f(t, 'accuracy')} | {f(t, 'cleanliness')} | "
                     f"{f(e, 'score')}{se(e)} | {f(e, 'accuracy')} | {f(e, 'cleanliness')} |")
    n_t = (rows["a_pretrained"].get("t2i") or {}).get("n")
    n_e = (rows["a_pretrained"].get("edit") or {}).get("n")
    where = ("held-out prompts" if args.heldout else
             "prompts of the training split drawn apart from the RL prompts, with new noise")
    lines += ["", f"n = {n_t} T2I images and {n_e} edits per row ({where} x seeds, ODE sampler, "
                  f"{g.eval_num_steps} steps). Budget: {json.dumps(budget)}"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
