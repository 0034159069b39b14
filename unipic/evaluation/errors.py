"""Evaluation failures a user can act on."""

from __future__ import annotations

from unipic.errors import UniPicError


class EvaluationError(UniPicError):
    """A benchmark cannot run: missing files, a file in the wrong format, a missing model or judge."""


class BenchmarkFormatError(EvaluationError):
    """A benchmark file does not follow its benchmark's own format; the message names the file and field."""
