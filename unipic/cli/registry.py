"""The list of command groups. Add one line per group; each module exposes a `typer.Typer` named `app`."""

from __future__ import annotations

import importlib

import typer

GROUPS: list[tuple[str, str]] = [
    # (command name, module path)
]


def groups() -> list[tuple[str, typer.Typer]]:
    return [(name, importlib.import_module(mod).app) for name, mod in GROUPS]
