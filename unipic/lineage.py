"""Lineage carried by every artifact: where the data came from, which config made it, from which parent."""

from __future__ import annotations

import datetime as _dt
import subprocess
from pathlib import Path

from pydantic import BaseModel, Field


def git_commit(cwd: str | Path | None = None) -> str:
    """The source commit of this code, or 'unknown' outside a git checkout (e.g. in a container)."""
    import os

    if os.environ.get("UNIPIC_GIT_COMMIT"):
        return os.environ["UNIPIC_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd or Path(__file__).resolve().parent, capture_output=True,
            text=True, timeout=5,
        )
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class Lineage(BaseModel):
    stage: str
    config_hash: str
    git_commit: str = Field(default_factory=git_commit)
    dataset_uri: str | None = None
    dataset_rev: str | None = None
    dataset_hash: str | None = None
    parent_model: str | None = None
    created_at: str = Field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat())

    def as_metadata(self) -> dict[str, str]:
        """Flat string dict for KFP artifact metadata (protobuf Struct turns ints into floats)."""
        return {k: str(v) for k, v in self.model_dump().items() if v is not None}
