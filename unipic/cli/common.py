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
