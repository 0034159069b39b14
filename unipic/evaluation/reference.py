"""The paper's reported numbers, stored as data with their source (data/benchmarks/reference/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unipic.evaluation.errors import EvaluationError

DEFAULT = Path(__file__).resolve().parents[2] / "data" / "benchmarks" / "reference" / "unipic2_paper.json"


def load_reference(path: str | Path | None = None) -> dict[str, Any]:
    p = Path(path) if path else DEFAULT
    if not p.is_file():
        raise EvaluationError(f"paper reference numbers not found at {p}")
    data = json.loads(p.read_text())
    for key in ("source", "models", "scales"):
        if key not in data:
            raise EvaluationError(f"{p}: missing field '{key}'")
    return data
