"""ImgEdit-Bench, Basic suite (PKU-YuanGroup/ImgEdit, `Benchmark/Basic/`), judged through an
OpenAI-compatible VLM with the suite's own type-specific rubrics.

- Files: `basic_edit.json` = {key: {id: "<folder>/<file>.jpg", prompt, edit_type}}, the source images under
  a folder, and `prompts.json` = {edit_type: rubric text with `<edit_prompt>`}. Outputs are `<key>.png`.
- Each rubric asks for three 1-5 scores; their names are read from the rubric's response-format lines
  ("<Dimension>: A number from 1 to 5."), and the answer is parsed strictly for exactly those names.
- Aggregation: per image the mean of its scores rounded to 2 decimals (`step1_get_avgscore.py`); per
  edit_type the mean over images rounded to 2 (`step2_typescore.py`); Overall = the unweighted mean of the
  type scores (no script computes it; this is how papers report it, noted as an assumption).

Deviation, on purpose: the reference silently drops failed judge calls (`{"error": ...}`); we exclude them
too but count them (`excluded`) so a biased average is visible.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from unipic.evaluation.errors import BenchmarkFormatError, EvaluationError

EDIT_TYPES = ("add", "adjust", "background", "compose", "extract", "remove", "replace", "style", "action")
_DIM_RE = re.compile(r"^\s*([^:\n]+?)\s*:\s*A number from 1 to 5\.?\s*$", re.M)


@dataclass
class ImgEditItem:
    key: str
    image_id: str
    prompt: str
    edit_type: str
    source: Image.Image


def load_rubrics(path: str | Path) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"ImgEdit rubrics not found: {path} (Benchmark/Basic/prompts.json)")
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise BenchmarkFormatError(f"{path}: expected an object {{edit_type: rubric}}")
    for t, text in data.items():
        if not isinstance(text, str) or "<edit_prompt>" not in text:
            raise BenchmarkFormatError(f"{path}: rubric '{t}' must be text containing '<edit_prompt>'")
        if len(rubric_dimensions(text)) != 3:
            raise BenchmarkFormatError(
                f"{path}: rubric '{t}' must name 3 dimensions as '<Name>: A number from 1 to 5.'")
    return data


def rubric_dimensions(rubric: str) -> list[str]:
    return [d.strip() for d in _DIM_RE.findall(rubric)]


def load_items(root: str | Path, edit_json: str = "basic_edit.json", image_dir: str = "images") -> list[ImgEditItem]:
    root = Path(root)
    path = root / edit_json
    if not path.is_file():
        raise EvaluationError(f"ImgEdit items not found: {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BenchmarkFormatError(f"{path}: not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise BenchmarkFormatError(f"{path}: expected an object {{key: {{id, prompt, edit_type}}}}")
    items = []
    for key, r in data.items():
        for f in ("id", "prompt", "edit_type"):
            if not isinstance(r, dict) or f not in r:
                raise BenchmarkFormatError(f"{path}: item '{key}' is missing field '{f}'")
        img_path = root / image_dir / r["id"]
        if not img_path.is_file():
            raise BenchmarkFormatError(f"{path}: item '{key}' field 'id' points at {img_path}, which does not exist")
        items.append(ImgEditItem(str(key), r["id"], r["prompt"], r["edit_type"], Image.open(img_path).convert("RGB")))
    return items


def rubric_prompt(rubric: str, instruction: str) -> str:
    return rubric.replace("<edit_prompt>", instruction)


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """rows: {edit_type, scores (list or None when excluded)}."""
    by_type: dict[str, list[float]] = defaultdict(list)
    excluded: dict[str, int] = defaultdict(int)
    for r in rows:
        if r["scores"] is None:
            excluded[r["edit_type"]] += 1
            continue
        by_type[r["edit_type"]].append(round(float(np.mean(r["scores"])), 2))
    types = {t: round(float(np.mean(v)), 2) for t, v in sorted(by_type.items())}
    return {"overall": float(np.mean(list(types.values()))) if types else float("nan"), "types": types,
            "excluded": int(sum(excluded.values())), "excluded_by_type": dict(excluded), "n": len(rows)}
