"""`unipic train metaquery`: stage 1 (align the connector) or stage 2 (connector + DiT, T2I + editing).

    unipic train metaquery -p smoke --set metaquery.train.stage=1 --set metaquery.train.init_from=KONTEXT_DIR \
        --set metaquery.train.dataset=DATA --set metaquery.train.output=MQ_STAGE1
    unipic train metaquery -p smoke --set metaquery.train.init_from=MQ_STAGE1 ...   # stage 2 (the default)
"""


import typer

from unipic.cli.common import PresetOpt, SetOpt, echo_train_summary, make_config
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
        echo_train_summary(res, stage=cfg.metaquery.train.stage, image_to=cfg.metaquery.image_to)
