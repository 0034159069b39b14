"""Where command groups and top-level commands are attached. Add one line per entry.

GROUPS: (name, module) where the module exposes a `typer.Typer` named `app` (e.g. `unipic data ...`).
COMMANDS: (name, "module:function") for top-level verbs (e.g. `unipic generate`).
Modules are imported lazily by the CLI, so heavy libraries load only inside the commands that need them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import typer

GROUPS: list[tuple[str, str]] = [
    # (command name, module path)
    ("services", "unipic.cli.services"),
    ("train", "unipic.cli.train"),
    ("data", "unipic.cli.data"),
    ("features", "unipic.cli.features"),
    ("serve", "unipic.cli.serve"),
    ("models", "unipic.cli.models"),
]

COMMANDS: list[tuple[str, str]] = [
    # (command name, "module.path:function")
    ("eval", "unipic.cli.evaluate:evaluate"),
    ("gate", "unipic.cli.evaluate:gate"),
    ("run", "unipic.cli.pipeline:run"),
    ("compile", "unipic.cli.pipeline:compile_"),
    ("submit", "unipic.cli.pipeline:submit"),
    ("runs", "unipic.cli.pipeline:runs"),
    ("understand", "unipic.cli.understand:understand"),
    ("generate", "unipic.cli.generate:generate"),
    ("edit", "unipic.cli.generate:edit"),
]


def groups() -> list[tuple[str, typer.Typer]]:
    return [(name, importlib.import_module(mod).app) for name, mod in GROUPS]


def commands() -> list[tuple[str, Callable[..., object]]]:
    out = []
    for name, target in COMMANDS:
        mod, func = target.split(":")
        out.append((name, getattr(importlib.import_module(mod), func)))
    return out
