"""PDTR stages: `rl-edit` (stage 1, editing RL) and `rl-t2i` (stage 2, text-to-image RL, from stage 1's model).

A stage: previous model + curated dataset -> score both tasks before -> Flow-GRPO rounds (checkpointed, exactly
resumable) -> merge LoRA -> score both tasks after -> write the merged pipeline (atomically; published with a
manifest for s3:// outputs), reward / KL / clip-fraction curves, before/after sample grids of the same prompts
and seeds, `results.json` and a short `report.md`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from unipic.config.base import config_hash
from unipic.config.rl import GRPOConfig, RLStageConfig
from unipic.errors import DataError
from unipic.lineage import Lineage
from unipic.logging import get_logger
from unipic.training.io import export_pipeline

if TYPE_CHECKING:  # torch-heavy modules load inside the stage, so bad input fails fast
    from unipic.rl.evaluate import TaskScore
    from unipic.rl.rollout import Condition
    from unipic.training.trainer import TrainResult

log = get_logger(__name__)

Task = Literal["edit", "t2i"]


@dataclass
class RLStageResult:
    model: str | None
    """The merged pipeline (None when stopped before the last round)."""
    before: dict[str, dict[str, float] | None]
    after: dict[str, dict[str, float] | None]
    train: TrainResult
    work_dir: Path
    lineage: Lineage
    artifacts: dict[str, str]


def _eval_conditions(data_dir: Path, kind: str, cfg: RLStageConfig) -> list[Condition]:
    """Held-out prompts when the dataset has them, else a separately drawn train subset. A kind none of whose
    tasks are in `eval_tasks` is not scored."""
    from unipic.rl.prompts import load_conditions
    from unipic.training.data import DatasetIndex

    if cfg.eval_tasks:
        have = DatasetIndex(data_dir, "all").df.get("task")
        unknown = sorted(set(cfg.eval_tasks) - set(have.astype(str) if have is not None else ()))
        if unknown:
            raise DataError(f"eval_tasks names tasks {unknown} that the dataset at {data_dir} does not have; "
                            "check rl.<stage>.eval_tasks")
        tasks: list[str] | None = cfg.eval_tasks
    else:
        tasks = cfg.tasks if kind == ("edit" if cfg.reward.weights.get("shapes_edit") else "t2i") else None
    for split, seed in (("heldout", 11), ("train", 12)):
        try:
            return load_conditions(data_dir, kind, split=split, max_prompts=cfg.eval_prompts, tasks=tasks,
                                   seed=cfg.seed + seed)
        except DataError:
            continue
    return []


def _score_both(pipe: Any, evals: dict[str, list[Condition]], grpo: GRPOConfig, cfg: RLStageConfig
                ) -> dict[str, TaskScore | None]:
    from unipic.rl.evaluate import score_task

    out = {}
    for kind, conds in evals.items():
        out[kind] = score_task(pipe, kind, conds, steps=grpo.eval_num_steps, guidance=grpo.eval_guidance_scale,
                               seeds=cfg.eval_seeds, seed=cfg.seed + 1000, batch_size=grpo.rollout_batch_size)
    return out


def _grid(before: TaskScore, after: TaskScore, conds: list[Condition], seeds: int, out: Path) -> Path:
    from unipic.training.metrics import image_grid

    n = min(len(before.images), 8 * seeds)
    images, labels = [], []
    picks = list(range(0, n))
    if conds and conds[0].source is not None:
        for i in picks:
            images.append(conds[i // seeds].source)
            labels.append("source")
    images += [before.images[i] for i in picks] + [after.images[i] for i in picks]
    labels += ["before"] * len(picks) + ["after"] * len(picks)
    scale = max(1, 64 // images[0].size[0])
    tmp = out.with_name(out.stem + ".tmp.png")
    image_grid(images, cols=len(picks), labels=labels, scale=scale).save(tmp)
    tmp.replace(out)
    return out


def _plots(records: list[dict[str, Any]], work_dir: Path) -> dict[str, str]:
    from unipic.training.metrics import plot_curves

    reward_keys = ["reward/mean"] + sorted(k for k in {k for r in records for k in r}
                                           if k.startswith("reward/") and k.count("/") == 2
                                           and not k.startswith("reward/count"))[:4]
    out = {}
    p = plot_curves(records, work_dir / "reward_curve.png", keys=reward_keys)
    if p:
        out["reward_curve"] = str(p)
    p = plot_curves(records, work_dir / "kl_clipfrac.png", keys=("kl", "clipfrac", "approx_kl", "ratio_dev_mean"))
    if p:
        out["kl_clipfrac_curve"] = str(p)
    return out


def _export(pipe: Any, output: str, lineage: Lineage, record: dict[str, Any], base_dir: Path, work_dir: Path,
            store_cfg: Any) -> str:
    return export_pipeline(pipe, output, lineage=lineage, record=record, work_dir=work_dir, store_cfg=store_cfg,
                           card_from=base_dir, card_update={"kind": record["kind"], "parent": lineage.parent_model,
                                                            "rounds": record["rounds"]})


def _report(task: str, before: dict, after: dict, artifacts: dict[str, str], cfg: RLStageConfig,
            grpo: GRPOConfig, train: TrainResult, seconds: float) -> str:
    lines = [f"# RL stage `rl-{task}`", "",
             f"{train.last_step} rounds x {cfg.prompts_per_round} prompts x G={grpo.group_size}, "
             f"{grpo.num_steps} SDE steps (a={grpo.noise_level}), CFG {grpo.guidance_scale}, beta {grpo.kl_beta}, "
             f"LoRA {'r%d/alpha%d' % (grpo.lora.rank, grpo.lora.alpha) if grpo.lora.enabled else 'off (full FT)'}, "
             f"lr {cfg.lr}, seed {cfg.seed}; {seconds:.0f} s.", "",
             f"Evaluation: ODE sampler, {grpo.eval_num_steps} steps, CFG {grpo.eval_guidance_scale}, "
             f"{cfg.eval_seeds} seed(s) per prompt, the same prompts and noise before and after.", "",
             "| task | metric | before | after |", "|---|---|---|---|"]
    for kind, name in (("t2i", "ShapesWorld GenEval-style"), ("edit", "ShapesWorld edit")):
        b, a = before.get(kind), after.get(kind)
        if b is None or a is None:
            lines.append(f"| {kind} | (no {kind} prompts in the dataset) | - | - |")
            continue
        for m in ("score", "accuracy", "cleanliness"):
            pm = lambda d: f" +- {d['score_se']:.3f}" if m == "score" and "score_se" in d else ""  # noqa: E731
            lines.append(f"| {kind} | {name} {m} (n={b['n']}) | {b[m]:.3f}{pm(b)} | {a[m]:.3f}{pm(a)} |")
    lines += [""] + [f"![{k}]({Path(v).name})" for k, v in artifacts.items() if v.endswith(".png")]
    return "\n".join(lines) + "\n"


def run_rl_stage(task: Task, cfg: RLStageConfig, grpo: GRPOConfig, work_dir: str | Path, *, store_cfg: Any = None,
                 resume: bool | Path = False, stop_at: int | None = None) -> RLStageResult:
    """Run one PDTR stage. `task="edit"` is stage 1, `task="t2i"` stage 2 (give it stage 1's output as
    base_model). Outputs go to `cfg.output` (default: work_dir/model) and `work_dir`."""
    from unipic.errors import ConfigError

    for name, what in (("base_model", "the previous stage's model"), ("dataset", "the curated dataset")):
        if not getattr(cfg, name):
            raise ConfigError(f"rl.{task}.{name} is empty: give {what} as a local directory or an s3:// URI "
                              f"(e.g. --set rl.{task}.{name}=PATH)")
    from unipic.device import resolve_device
    from unipic.pipelines.kontext import UniPicKontextPipeline
    from unipic.rl.lora import merge_lora
    from unipic.rl.prompts import PromptSource, load_conditions
    from unipic.rl.rewards import build_reward
    from unipic.rl.trainer import FlowGRPOTrainer
    from unipic.training.io import resolve_input

    t0 = time.perf_counter()
    key = f"rl.{task}"
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    cache = work_dir / "cache"
    base_dir = resolve_input(cfg.base_model, "model from the previous stage", f"{key}.base_model", store_cfg,
                             cache / "models")
    data_dir = resolve_input(cfg.dataset, "curated dataset", f"{key}.dataset", store_cfg, cache / "data")
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    pipe = UniPicKontextPipeline.from_pretrained(base_dir).to(resolve_device(cfg.device, key=f"{key}.device"))
    train_conds = load_conditions(data_dir, task, split=cfg.split, max_prompts=cfg.max_prompts, tasks=cfg.tasks,
                                  seed=cfg.seed)
    eval_dir = resolve_input(cfg.eval_dataset, "evaluation dataset", f"{key}.eval_dataset", store_cfg,
                             cache / "data") if cfg.eval_dataset else data_dir
    evals = {kind: _eval_conditions(eval_dir, kind, cfg) for kind in ("t2i", "edit")}
    (work_dir / "config.json").write_text(json.dumps(
        {"config_hash": config_hash(cfg), key: json.loads(cfg.model_dump_json()),
         "rl.grpo": json.loads(grpo.model_dump_json())}, indent=2))

    before_path = work_dir / "before.json"
    before_scores = _score_both(pipe, evals, grpo, cfg)
    before = {k: (v.to_dict() if v else None) for k, v in before_scores.items()}
    before_path.write_text(json.dumps(before, indent=2))
    log.info("%s before: %s", key, before)

    reward = build_reward(cfg.reward)
    trainer = FlowGRPOTrainer(cfg, grpo, pipe, reward, PromptSource(train_conds, cfg.prompts_per_round, cfg.seed),
                              work_dir, task=task, eval_conditions=(evals[task] or train_conds)[:8],
                              store_cfg=store_cfg)
    lineage = Lineage(stage=f"rl-{task}", config_hash=config_hash(cfg), dataset_uri=cfg.dataset,
                      dataset_rev=cfg.dataset_rev, parent_model=cfg.base_model)
    result = trainer.train(resume=resume, stop_at=stop_at)
    artifacts = _plots(trainer.metrics.read(), work_dir)
    if result.last_step < cfg.steps:
        log.info("stopped at round %d of %d: not exporting; continue with --resume", result.last_step, cfg.steps)
        return RLStageResult(None, before, {}, result, work_dir, lineage, artifacts)

    if trainer.ema is not None:
        trainer.ema.copy_to(trainer.model)
    merge_lora(pipe.transformer)
    pipe.transformer.eval()
    after_scores = _score_both(pipe, evals, grpo, cfg)
    after = {k: (v.to_dict() if v else None) for k, v in after_scores.items()}
    for kind in ("t2i", "edit"):
        b, a = before_scores.get(kind), after_scores.get(kind)
        if b is not None and a is not None:
            artifacts[f"samples_{kind}"] = str(_grid(b, a, evals[kind], cfg.eval_seeds,
                                                     work_dir / f"samples_before_after_{kind}.png"))
    seconds = time.perf_counter() - t0
    record = {"kind": f"rl-{task}", "rounds": result.last_step, "before": before, "after": after,
              "weights": "lora-merged" if grpo.lora.enabled else "full", "seconds": seconds}
    output = cfg.output or str(work_dir / "model")
    model = _export(pipe, output, lineage, record, Path(base_dir), work_dir, store_cfg)
    (work_dir / "results.json").write_text(json.dumps(
        {"stage": f"rl-{task}", "model": model, "before": before, "after": after, "rounds": result.last_step,
         "seed": cfg.seed, "seconds": seconds, "config_hash": config_hash(cfg), "artifacts": artifacts},
        indent=2))
    (work_dir / "report.md").write_text(_report(task, before, after, artifacts, cfg, grpo, result, seconds))
    artifacts["report"] = str(work_dir / "report.md")
    log.info("%s after: %s -> %s", key, after, model)
    return RLStageResult(model, before, after, result, work_dir, lineage, artifacts)


def run_rl_for_component(task: Task, preset: str, overrides: list[str], base_model_uri: str, dataset_uri: str,
                         dataset_rev: str, eval_dataset_uri: str, out_uri: str, work_dir: str | Path
                         ) -> tuple[RLStageResult, dict[str, float], str]:
    """What the KFP components run: resolve the config, run the stage, and return (result, metrics to log,
    the Markdown report with its PNGs embedded). The default output is s3://<models>/rl-<task>/<config hash>."""
    import base64

    from unipic.config import load_config

    key = f"rl.{task}"
    sets = [str(o) for o in overrides] + [f"{key}.base_model={base_model_uri}", f"{key}.dataset={dataset_uri}"]
    if dataset_rev:
        sets.append(f"{key}.dataset_rev={dataset_rev}")
    if eval_dataset_uri:
        sets.append(f"{key}.eval_dataset={eval_dataset_uri}")
    cfg = load_config(preset, sets)
    uri = out_uri or f"s3://{cfg.store.buckets.models}/rl-{task}/{config_hash(getattr(cfg.rl, task))}"
    cfg = load_config(preset, sets + [f"{key}.output={uri}"])
    res = run_rl_stage(task, getattr(cfg.rl, task), cfg.rl.grpo, work_dir, store_cfg=cfg.store)
    metrics: dict[str, float] = {"rounds": float(res.train.last_step)}
    for when, scores in (("before", res.before), ("after", res.after)):
        for kind, vals in scores.items():
            for m in ("score", "accuracy", "cleanliness"):
                if vals is not None:
                    metrics[f"{when}_{kind}_{m}"] = float(vals[m])
    records = [json.loads(x) for x in Path(res.train.metrics_path).read_text().splitlines() if x]
    if records:
        for k in ("reward/mean", "kl", "clipfrac", "step_time_s", "peak_rss_gb"):
            if isinstance(records[-1].get(k), (int, float)):
                metrics[f"last_{k.replace('/', '_')}"] = float(records[-1][k])
    report = (Path(res.artifacts["report"]).read_text() if "report" in res.artifacts else f"# rl-{task}\n")
    for name, path in res.artifacts.items():
        if path.endswith(".png") and Path(path).is_file():
            data = base64.b64encode(Path(path).read_bytes()).decode()
            report = report.replace(f"]({Path(path).name})", f"](data:image/png;base64,{data})")
    return res, metrics, report
