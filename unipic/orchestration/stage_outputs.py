"""A training stage's component outputs, from an in-process run or from what a TrainJob's nodes published."""

from __future__ import annotations

import base64
import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unipic.lineage import Lineage

if TYPE_CHECKING:
    from unipic.orchestration.training_stage import StageOutput, TrainingStage
    from unipic.orchestration.trainjob_stage import TrainJobRun
    from unipic.training.trainer import TrainResult

_CONFIG_EXTRAS = {"metaquery_stage": "metaquery.train.stage", "image_to": "metaquery.image_to"}
_LAST_RECORD_KEYS = ("loss", "img_tok_per_s", "step_time_s", "peak_rss_gb")


def _extras(stage: TrainingStage, cfg: Any) -> dict[str, str]:
    return {k: str(functools.reduce(getattr, _CONFIG_EXTRAS[k].split("."), cfg)) for k in stage.metadata_keys}


def _head(stage: TrainingStage, uri: str, lineage: dict[str, Any], extras: dict[str, str]) -> list[str]:
    return ([f"# {stage.title}", "", f"- model: `{uri}`", f"- from: `{lineage.get('parent_model')}`",
             f"- dataset: `{lineage.get('dataset_uri')}` (rev {lineage.get('dataset_rev') or '-'})"]
            + [f"- {k}: {v}" for k, v in extras.items()] + [f"- config hash: `{lineage.get('config_hash')}`"])


def _train_metrics(t: TrainResult) -> dict[str, float]:
    out = {"steps": float(t.last_step)}
    if t.losses.get(t.last_step) is not None:
        out["final_loss"] = float(t.losses[t.last_step])
    records = [json.loads(x) for x in Path(t.metrics_path).read_text().splitlines() if x]
    for key in _LAST_RECORD_KEYS if records else ():
        if isinstance(records[-1].get(key), (int, float)):
            out[key] = float(records[-1][key])
    return out


def _embed_pngs(paths: list[Path]) -> list[str]:
    return [f"![{Path(p).name}](data:image/png;base64,{base64.b64encode(Path(p).read_bytes()).decode()})"
            for p in paths]


def _trainer_stage(stage: TrainingStage, cfg: Any, work: Path) -> StageOutput:
    from unipic.orchestration.training_stage import StageOutput

    if stage.name == "pretrain":
        from unipic.training.pretrain import run_pretrain

        res = run_pretrain(cfg.pretrain, work, store_cfg=cfg.store)
    else:
        from unipic.training.metaquery import run_metaquery

        res = run_metaquery(cfg.metaquery, work, store_cfg=cfg.store)
    t, extras = res.train, _extras(stage, cfg)
    lines = _head(stage, res.model, res.lineage.model_dump(), extras)
    lines += [f"- steps: {t.last_step}, final loss: {t.losses.get(t.last_step)}", ""]
    lines += _embed_pngs(t.sample_grids[-1:] + ([t.curve_png] if t.curve_png else []))
    return StageOutput(res.model, {"uri": res.model, **res.lineage.as_metadata(), **extras},
                       {"uri": res.model, "lineage": res.lineage.model_dump()}, _train_metrics(t),
                       "\n".join(lines) + "\n")


def _rl_stage(stage: TrainingStage, cfg: Any, preset: str, sets: list[str], work: Path) -> StageOutput:
    from unipic.orchestration.training_stage import StageOutput
    from unipic.rl.stages import run_rl_for_component

    task, sec = stage.name.removeprefix("rl-"), stage.section_of(cfg)
    res, metrics, report = run_rl_for_component(task, preset, sets, sec.base_model, sec.dataset, sec.dataset_rev or "",
                                                sec.eval_dataset or "", sec.output, work)
    record = {"uri": res.model, "lineage": res.lineage.model_dump(), "before": res.before, "after": res.after}
    return StageOutput(res.model, {"uri": res.model, **res.lineage.as_metadata()}, record, metrics, report)


def in_process(stage: TrainingStage, cfg: Any, preset: str, sets: list[str], work: Path) -> StageOutput:
    """Train here (single node: this pod's CPU/GPUs, DeepSpeed if the launcher started several processes)."""
    if stage.name.startswith("rl-"):
        return _rl_stage(stage, cfg, preset, sets, work)
    return _trainer_stage(stage, cfg, work)


def _numbers(data: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric fields of a lineage record, nested dicts flattened (before.t2i.score -> before_t2i_score)."""
    out: dict[str, float] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_numbers(value, f"{prefix}{key}_"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def from_trainjob(stage: TrainingStage, cfg: Any, job: TrainJobRun) -> StageOutput:
    """The outputs of a model a TrainJob published: lineage from its manifest and lineage record, metrics from
    the record's numbers. Curves and sample grids stay in the job's run directory on node 0."""
    from unipic.orchestration.trainjob import logs_hint
    from unipic.orchestration.training_stage import StageOutput

    uri, rec, where = str(stage.section_of(cfg).output), job.record, job.where
    spec, meta = job.job["spec"], job.job["metadata"]
    nodes, limits = spec["trainer"]["numNodes"], spec["trainer"]["resourcesPerNode"]["limits"]
    lineage = {k: rec[k] for k in Lineage.model_fields if k in rec} or dict(job.metadata)
    extras = {k: str(rec[k]) for k in stage.metadata_keys if k in rec}
    metrics = _numbers({k: v for k, v in rec.items() if k not in Lineage.model_fields})
    lines = _head(stage, uri, lineage, extras)
    lines += [f"- trained by TrainJob `{where}`: {nodes} nodes x {limits.get('nvidia.com/gpu', 0)} GPUs "
              f"(runtime `{spec['runtimeRef']['name']}`)", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.6g} |" for k, v in metrics.items()]
    lines += ["", "Loss curves and sample grids are in the job's run directory on node 0; its log: "
                  f"`{logs_hint(meta['namespace'], meta['name'])}`."]
    metadata = {"uri": uri, **job.metadata, **extras, "trainjob": where, "nodes": str(nodes)}
    record = {"uri": uri, "lineage": lineage, **{k: rec[k] for k in ("before", "after") if k in rec},
              "trainjob": where}
    return StageOutput(uri, metadata, record, metrics, "\n".join(lines) + "\n", trainjob=where)
