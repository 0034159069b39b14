"""GEdit-Bench (Step1X-Edit, `GEdit-Bench/`), judged by VIEScore through an OpenAI-compatible VLM.

- Data: the HF dataset `stepfun-ai/GEdit-Bench` rows (task_type, key, instruction, instruction_language,
  Intersection_exist, input_image). `load_items` reads its parquet export (images as HF Image structs
  {bytes, path}) or a JSONL file with `input_image` as a path relative to the file.
- Output layout: `<dir>/fullset/<task_type>/<lang>/<key>.png` (+ `<key>_SRCIMG.png`); the edited image is
  resized to the source size before judging, as `test_gedit_score.py` does.
- Score per sample: SC = min(SC scores), PQ = min(PQ scores), O = sqrt(SC * PQ), 0-10.
- Aggregation (`calculate_statistics.py`): per group the means of SC, PQ, O; each headline number is the
  unweighted mean over groups; the same over the `Intersection_exist` subset.

Deviation, on purpose: the reference guesses `random.randint(0, 10)` when it cannot parse the judge. Here an
unparseable or out-of-range answer is asked again (bounded), then excluded and counted in `excluded`.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from unipic.evaluation.errors import BenchmarkFormatError, EvaluationError

GROUPS = ("background_change", "color_alter", "material_alter", "motion_change", "ps_human", "style_change",
          "subject-add", "subject-remove", "subject-replace", "text_change", "tone_transfer")
FIELDS = ("task_type", "key", "instruction", "instruction_language", "input_image")


@dataclass
class GEditItem:
    key: str
    task_type: str
    instruction: str
    language: str
    intersection: bool
    source: Image.Image


def _image(value: Any, base: Path, where: str) -> Image.Image:
    try:
        if isinstance(value, dict):
            if value.get("bytes"):
                return Image.open(io.BytesIO(value["bytes"])).convert("RGB")
            value = value.get("path")
        if isinstance(value, (bytes, bytearray)):
            return Image.open(io.BytesIO(value)).convert("RGB")
        if isinstance(value, str):
            return Image.open(base / value).convert("RGB")
    except (OSError, ValueError) as exc:
        raise BenchmarkFormatError(f"{where}: field 'input_image' cannot be read as an image: {exc}") from None
    raise BenchmarkFormatError(f"{where}: field 'input_image' must be an HF Image struct, bytes or a path")


def _records(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if path.suffix in (".jsonl", ".json"):
        out = []
        for i, line in enumerate(path.read_text().splitlines(), start=1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise BenchmarkFormatError(f"{path}:{i}: not JSON ({exc.msg})") from None
        return out
    raise BenchmarkFormatError(f"{path}: unsupported GEdit-Bench file type; use the dataset's parquet or JSONL")


def load_items(path: str | Path, language: str = "en") -> list[GEditItem]:
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"GEdit-Bench data not found: {path}")
    items = []
    for i, r in enumerate(_records(path)):
        where = f"{path}: row {i}"
        for f in FIELDS:
            if f not in r:
                raise BenchmarkFormatError(f"{where}: missing field '{f}' (GEdit-Bench rows need {', '.join(FIELDS)})")
        if r["task_type"] not in GROUPS:
            raise BenchmarkFormatError(f"{where}: field 'task_type' is {r['task_type']!r}; expected one of "
                                       f"{', '.join(GROUPS)}")
        if r["instruction_language"] != language:
            continue
        inter = r.get("Intersection_exist", r.get("intersection_exist", False))
        items.append(GEditItem(str(r["key"]), r["task_type"], r["instruction"], r["instruction_language"],
                               bool(inter), _image(r["input_image"], path.parent, where)))
    return items


def write_layout(root: str | Path, item: GEditItem, edited: Image.Image) -> Path:
    folder = Path(root) / "fullset" / item.task_type / item.language
    folder.mkdir(parents=True, exist_ok=True)
    item.source.save(folder / f"{item.key}_SRCIMG.png")
    edited.save(folder / f"{item.key}.png")
    return folder / f"{item.key}.png"


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """rows: {group, sc, pq, o (None when excluded), intersection}. Means per group, then over groups."""
    def block(sel: Sequence[dict[str, Any]]) -> dict[str, Any]:
        groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"sc": [], "pq": [], "o": []})
        excluded: dict[str, int] = defaultdict(int)
        for r in sel:
            if r["o"] is None:
                excluded[r["group"]] += 1
                continue
            for k in ("sc", "pq", "o"):
                groups[r["group"]][k].append(r[k])
        per = {g: {k: float(np.mean(v)) for k, v in d.items()} | {"n": len(d["o"]), "excluded": excluded[g]}
               for g, d in sorted(groups.items())}
        head = {k: float(np.mean([p[k] for p in per.values()])) if per else float("nan") for k in ("sc", "pq", "o")}
        return {"overall": head["o"], "sc": head["sc"], "pq": head["pq"], "groups": per,
                "excluded": int(sum(excluded.values())), "n": len(sel)}

    out = block(rows)
    out["intersection"] = block([r for r in rows if r.get("intersection")])
    return out


def resize_to_source(edited: Image.Image, source: Image.Image) -> Image.Image:
    return edited if edited.size == source.size else edited.resize(source.size, Image.BICUBIC)
