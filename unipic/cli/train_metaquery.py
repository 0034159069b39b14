"""`unipic train metaquery`: stage 1 (align the connector) or stage 2 (connector + DiT, T2I + editing).

    unipic train metaquery -p smoke --set metaquery.train.stage=1 --set metaquery.train.init_from=KONTEXT_DIR \
        --set metaquery.train.dataset=DATA --set metaquery.train.output=MQ_STAGE1
    unipic train metaquery -p smoke --set metaquery.train.init_from=MQ_STAGE1 ...   # stage 2 (the default)
"""

import json
import os

import typer

from unipic.cli.common import PresetOpt, SetOpt, make_config
from unipic.cli.train import ResumeFromOpt, ResumeOpt, WorkDirOpt, stage_work_dir


def register(app: typer.Typer) -> None:
    @app.command("metaquery")
    def metaquery_cmd(
        preset: PresetOpt = "ci",
        set_: SetOpt = None,
        resume: ResumeOpt = False,
        resume_from: ResumeFromOpt = None,
        work_dir: WorkDirOpt = None,
    ) -> None:
        """Train UniPic2-MetaQuery from metaquery.train.init_from (a Kontext or MetaQuery model) on
        metaquery.train.dataset; the MLLM stays frozen. Writes the model folder to metaquery.train.output."""
        from unipic.training.metaquery import run_metaquery

        cfg = make_config(preset, set_)
        wd = stage_work_dir(cfg, f"metaquery-stage{cfg.metaquery.train.stage}", work_dir)
        res = run_metaquery(cfg.metaquery, wd, store_cfg=cfg.store, resume=resume_from or resume)
        t = res.train
        summary = {
            "model": res.model,
            "stage": cfg.metaquery.train.stage,
            "image_to": cfg.metaquery.image_to,
            "steps": t.last_step,
            "resumed_from_step": t.first_step,
            "final_loss": t.losses.get(t.last_step),
            "checkpoint": str(t.checkpoint) if t.checkpoint else None,
            "metrics": str(t.metrics_path),
            "loss_curve": str(t.curve_png) if t.curve_png else None,
            "samples": [str(p) for p in t.sample_grids],
            "lineage": res.lineage.as_metadata(),
        }
        if os.environ.get("RANK", "0") == "0":
            typer.echo(json.dumps(summary, indent=2))
