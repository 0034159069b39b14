"""`unipic train rl-edit` (PDTR stage 1) and `unipic train rl-t2i` (stage 2): Flow-GRPO on the Kontext model."""

from __future__ import annotations

import json

import typer

from unipic.cli.common import PresetOpt, SetOpt, make_config
from unipic.cli.train import ResumeFromOpt, ResumeOpt, StopAtOpt, WorkDirOpt, stage_work_dir


def _run(task: str, preset: str, sets: list[str] | None, resume: bool, resume_from, work_dir, stop_at) -> None:
    from unipic.rl.stages import run_rl_stage

    cfg = make_config(preset, sets)
    stage_cfg = getattr(cfg.rl, task)
    wd = stage_work_dir(cfg, f"rl-{task}", work_dir)
    res = run_rl_stage(task, stage_cfg, cfg.rl.grpo, wd, store_cfg=cfg.store, resume=resume_from or resume,
                       stop_at=stop_at)
    typer.echo(json.dumps({
        "model": res.model, "rounds": res.train.last_step, "resumed_from_round": res.train.first_step,
        "before": res.before, "after": res.after, "checkpoint": str(res.train.checkpoint) if res.train.checkpoint
        else None, "metrics": str(res.train.metrics_path), "artifacts": res.artifacts,
        "lineage": res.lineage.as_metadata(),
    }, indent=2))


def register(app: typer.Typer) -> None:
    @app.command("rl-edit")
    def rl_edit_cmd(preset: PresetOpt = "ci", set_: SetOpt = None, resume: ResumeOpt = False,
                    resume_from: ResumeFromOpt = None, work_dir: WorkDirOpt = None, stop_at: StopAtOpt = None) -> None:
        """PDTR stage 1: editing RL (Flow-GRPO) from rl.edit.base_model on instructions + source images of
        rl.edit.dataset; writes the LoRA-merged pipeline to rl.edit.output, curves, before/after grids."""
        _run("edit", preset, set_, resume, resume_from, work_dir, stop_at)

    @app.command("rl-t2i")
    def rl_t2i_cmd(preset: PresetOpt = "ci", set_: SetOpt = None, resume: ResumeOpt = False,
                   resume_from: ResumeFromOpt = None, work_dir: WorkDirOpt = None, stop_at: StopAtOpt = None) -> None:
        """PDTR stage 2: text-to-image RL (Flow-GRPO) from rl.t2i.base_model (stage 1's output) on captions of
        rl.t2i.dataset; writes the LoRA-merged pipeline to rl.t2i.output, curves, before/after grids."""
        _run("t2i", preset, set_, resume, resume_from, work_dir, stop_at)
