"""Judge failures that stop a whole run (as opposed to one excluded answer, which is counted)."""

from __future__ import annotations

from unipic.errors import UniPicError


class JudgeError(UniPicError):
    """The judge endpoint refuses every request (bad URL, bad key, unknown model) or is unreachable."""
