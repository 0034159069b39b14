"""`unipic train ...`: training stages. `pretrain` lives here; other stages attach their commands.

To add a stage command, create `unipic/cli/train_<stage>.py` exposing `register(app)` and list it in
`EXTENSIONS` (one line), or add a command below. Modules that do not exist (yet) are skipped, so a
command only appears once it is there.

Multi-process (DeepSpeed over gloo on CPU, nccl on GPUs):
    torchrun --nproc_per_node 2 -m unipic.cli.main train pretrain --set pretrain.deepspeed.enabled=true
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from unipic.cli.common import PresetOpt, SetOpt, echo_train_summary, make_config

app = typer.Typer(help="Train: pre-training (joint T2I + editing); RL and MetaQuery stages.", no_args_is_help=True)

EXTENSIONS: list[str] = [
    "unipic.cli.train_rl",
    "unipic.cli.train_metaquery",
]

ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue from the latest complete checkpoint.")]
ResumeFromOpt = Annotated[
    Path | None, typer.Option("--resume-from", help="Continue from this checkpoint directory (step-XXXXXXXX).")
]
WorkDirOpt = Annotated[
    Path | None,
    typer.Option("--work-dir", help="Run directory (checkpoints, metrics, samples); default run.workdir/run.name/STAGE."),
]

StopAtOpt = Annotated[
    int | None, typer.Option("--stop-at", help="Stop after this step (checkpointed; continue later with --resume).")
]


def stage_work_dir(cfg, stage: str, work_dir: Path | None) -> Path:
    return work_dir or Path(cfg.run.workdir) / cfg.run.name / stage


@app.command("pretrain")
def pretrain_cmd(preset: PresetOpt = "ci", set_: SetOpt = None, resume: ResumeOpt = False,
                 resume_from: ResumeFromOpt = None, work_dir: WorkDirOpt = None, stop_at: StopAtOpt = None) -> None:
    """Pre-train the Kontext DiT on T2I + editing (flow matching) from pretrain.base_model on pretrain.dataset;
    write the trained pipeline (EMA weights, lineage) to pretrain.output."""
    from unipic.training.pretrain import run_pretrain

    cfg = make_config(preset, set_)
    wd = stage_work_dir(cfg, "pretrain", work_dir)
    res = run_pretrain(cfg.pretrain, wd, store_cfg=cfg.store, resume=resume_from or resume,
                       stop_at=stop_at)
    echo_train_summary(res)


def _attach_extensions() -> None:
    for name in EXTENSIONS:
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        module.register(app)


_attach_extensions()
