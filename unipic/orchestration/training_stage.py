"""What the training components run: one call that trains in this process, or, when the stage asks for more than
one node (cluster.<resources>.nodes > 1), as a Kubeflow Trainer TrainJob, and returns the same outputs either
way (model URI, lineage metadata, metrics, a Markdown report), ready to write to the KFP artifacts."""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unipic.config import config_hash, load_config
from unipic.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class TrainingStage:
    name: str
    """The `unipic train <name>` command, and the folder under the models bucket."""
    section: str
    """Config path of the stage's section (its `output`, `dataset`, `deepspeed` fields)."""
    resources: str
    """cluster.<resources>: nodes, GPUs, CPU and memory per node."""
    base_key: str
    """The section's input-model field."""
    hashed: str
    """Config path whose hash names the default output."""
    title: str
    metadata_keys: tuple[str, ...] = ()
    """Fields of the published lineage record that also go into the Model artifact's metadata."""

    def section_of(self, cfg: Any) -> Any:
        return functools.reduce(getattr, self.section.split("."), cfg)

    def resources_of(self, cfg: Any) -> Any:
        return getattr(cfg.cluster, self.resources)

    def default_output(self, cfg: Any) -> str:
        hashed = functools.reduce(getattr, self.hashed.split("."), cfg)
        prefix = f"stage{cfg.metaquery.train.stage}-" if self.name == "metaquery" else ""
        return f"s3://{cfg.store.buckets.models}/{self.name}/{prefix}{config_hash(hashed)}"


STAGES = {s.name: s for s in (
    TrainingStage("pretrain", "pretrain", "pretrain", "base_model", "pretrain",
                  "Pre-training (UniPic2-SD3.5M-Kontext)"),
    TrainingStage("rl-edit", "rl.edit", "rl", "base_model", "rl.edit", "RL stage `rl-edit`"),
    TrainingStage("rl-t2i", "rl.t2i", "rl", "base_model", "rl.t2i", "RL stage `rl-t2i`"),
    TrainingStage("metaquery", "metaquery.train", "metaquery", "init_from", "metaquery", "MetaQuery",
                  ("metaquery_stage", "image_to")),
)}


@dataclass
class StageOutput:
    """A training component's outputs, the same whether it trained here or through a TrainJob."""

    model: str
    metadata: dict[str, str]
    """Model artifact metadata: `uri` plus the lineage (Lineage.as_metadata) and stage extras."""
    record: dict[str, Any]
    """The Model artifact file: {"uri", "lineage", ...}."""
    metrics: dict[str, float] = field(default_factory=dict)
    report: str = ""
    trainjob: str | None = None
    """"namespace/name" when a TrainJob trained the model."""

    def publish(self, model: Any, metrics: Any, report: Any) -> str:
        """Write the KFP output artifacts (duck-typed: `.metadata`/`.path`, `.log_metric`, `.path`); returns the
        model URI. Called only after training succeeded, so a failed stage leaves no outputs."""
        model.metadata.update(self.metadata)
        Path(model.path).write_text(json.dumps(self.record, default=str))
        for name, value in self.metrics.items():
            metrics.log_metric(name, value)
        Path(report.path).write_text(self.report)
        return self.model


def resolve_stage_config(stage: TrainingStage, preset: str, overrides: list[str], inputs: dict[str, str],
                         out_uri: str) -> tuple[Any, list[str]]:
    """The config the stage runs with, and the overrides that produce it: `inputs` (config key -> value, ""
    = keep the preset's) and the output (`out_uri`, or s3://<models>/<stage>/<config hash>)."""
    sets = [str(o) for o in overrides] + [f"{k}={v}" for k, v in inputs.items() if v not in ("", None)]
    uri = out_uri or stage.default_output(load_config(preset, sets))
    sets.append(f"{stage.section}.output={uri}")
    return load_config(preset, sets), sets


def run_training_stage(stage_name: str, preset: str, overrides: list[str], inputs: dict[str, str], out_uri: str,
                       *, image: str, run_id: str = "", work_dir: str | Path | None = None, api: Any = None,
                       store: Any = None) -> StageOutput:
    """Train one stage: in-process when cluster.<resources>.nodes == 1, else as a TrainJob running
    `unipic train <stage>` with the same preset and overrides on `image` (the training image). `run_id` names
    the TrainJob (the same id, e.g. the KFP pod name, follows the same job after a restart)."""
    from unipic.orchestration import stage_outputs

    stage = STAGES[stage_name]
    cfg, sets = resolve_stage_config(stage, preset, overrides, inputs, out_uri)
    if stage.resources_of(cfg).nodes > 1:
        from unipic.orchestration.trainjob_stage import run_stage_trainjob

        job = run_stage_trainjob(stage, cfg, preset, sets, image=image, run_id=run_id, api=api, store=store)
        return stage_outputs.from_trainjob(stage, cfg, job)
    if work_dir is not None:
        return stage_outputs.in_process(stage, cfg, preset, sets, Path(work_dir))
    with tempfile.TemporaryDirectory(prefix=f"unipic-{stage.name}-") as work:
        return stage_outputs.in_process(stage, cfg, preset, sets, Path(work))


def run_rl_component(task: str, preset: str, overrides: list[str], base_model_uri: str, dataset_uri: str,
                     dataset_rev: str, eval_dataset_uri: str, out_uri: str, outputs: tuple[Any, Any, Any], *,
                     image: str, run_id: str = "") -> str:
    """The body of both PDTR components (rl_edit: task "edit", rl_t2i: task "t2i"): train the stage and write
    `outputs` (model, metrics, report); returns the model URI."""
    key = f"rl.{task}"
    inputs = {f"{key}.base_model": base_model_uri, f"{key}.dataset": dataset_uri, f"{key}.dataset_rev": dataset_rev,
              f"{key}.eval_dataset": eval_dataset_uri}
    out = run_training_stage(f"rl-{task}", preset, overrides, inputs, out_uri, image=image, run_id=run_id)
    return out.publish(*outputs)
