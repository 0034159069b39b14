"""The one logging setup: rich on a terminal, plain lines elsewhere (KFP pods, CI logs)."""

from __future__ import annotations

import logging
import os
import sys

_CONFIGURED = False


def setup_logging(level: str | int | None = None) -> None:
    global _CONFIGURED
    level = level or os.environ.get("UNIPIC_LOG_LEVEL", "INFO")
    root = logging.getLogger("unipic")
    root.setLevel(level)
    if _CONFIGURED:
        return
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.propagate = False
    _CONFIGURED = True


def get_logger(name: str) -> logging.Logger:
    if not name.startswith("unipic"):
        name = f"unipic.{name}"
    return logging.getLogger(name)
