"""Options shared by every command: a preset and `--set key.path=value` overrides."""

from __future__ import annotations

from typing import Annotated

import typer

from unipic.config import UniPicConfig, load_config

PresetOpt = Annotated[str, typer.Option("--preset", "-p", help="Preset name (configs/NAME.yaml) or a YAML path.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a config value, e.g. --set shapes.n_t2i=100 (repeatable)."),
]


def make_config(preset: str, sets: list[str] | None) -> UniPicConfig:
    return load_config(preset, sets or [])


def echo_train_summary(res, **extra) -> None:
    """A training stage's result as JSON on stdout, once per job (rank 0 under a launcher)."""
    import json
    import os

    t = res.train
    summary = {
        "model": res.model, **extra, "steps": t.last_step, "resumed_from_step": t.first_step,
        "final_loss": t.losses.get(t.last_step), "checkpoint": str(t.checkpoint) if t.checkpoint else None,
        "metrics": str(t.metrics_path), "loss_curve": str(t.curve_png) if t.curve_png else None,
        "samples": [str(p) for p in t.sample_grids], "lineage": res.lineage.as_metadata(),
    }
    if os.environ.get("RANK", "0") == "0":
        typer.echo(json.dumps(summary, indent=2))
