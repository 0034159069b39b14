"""DPG-Bench (ELLA, TencentQQGYLab; `dpg_bench/compute_dpg_bench.py`), with the VQA model behind an interface.

- Files: `prompts/<item_id>.txt` (one prompt each) and `dpg_bench.csv` with columns item_id, text, keywords,
  proposition_id, dependency, category_broad, category_detailed, tuple, question_natural_language.
- Protocol: 4 images per prompt tiled 2x2 into one image; each crop is asked every question of its item;
  a question scores 1 only when the answer is exactly "yes"; then every question with a parent (from
  `dependency`, "0" = root) that scored 0 is set to 0 (the DAG rule); crop score = mean over questions,
  item score = mean over crops, DPG = 100 x mean over items.
- Categories: L2 = `tuple.split('(')[0]`, L1 = its part before '-'; scored x100.

Reference quirks, reproduced by default (`reference_quirks=True`) so numbers match the published ones, and
switchable off: the reference skips the CSV's first data row (`prepare_dpg_data` drops i == 0), and computes
category scores from the last crop's scores before the DAG rule. Missing images are reported, not skipped
silently.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from unipic.evaluation.errors import BenchmarkFormatError, EvaluationError

COLUMNS = ("item_id", "text", "keywords", "proposition_id", "dependency", "category_broad", "category_detailed",
           "tuple", "question_natural_language")


class VQA(Protocol):
    def answer(self, image: Image.Image, question: str) -> str: ...


@dataclass
class Question:
    proposition_id: int
    dependency: list[int]
    question: str
    tuple: str

    @property
    def category_l2(self) -> str:
        return self.tuple.split("(")[0].strip()

    @property
    def category_l1(self) -> str:
        return self.category_l2.split("-")[0].strip()


@dataclass
class DPGItem:
    item_id: str
    prompt: str
    questions: list[Question] = field(default_factory=list)


def load_questions(csv_path: str | Path, reference_quirks: bool = True) -> dict[str, list[Question]]:
    path = Path(csv_path)
    if not path.is_file():
        raise EvaluationError(f"DPG-Bench questions not found: {path} (dpg_bench.csv from ELLA's dpg_bench/)")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("item_id", "proposition_id", "dependency", "tuple", "question_natural_language")
                   if c not in (reader.fieldnames or [])]
        if missing:
            raise BenchmarkFormatError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
        out: dict[str, list[Question]] = defaultdict(list)
        for i, row in enumerate(reader):
            if reference_quirks and i == 0:
                continue
            where = f"{path}: row {i + 2}"
            try:
                pid = int(row["proposition_id"])
            except (TypeError, ValueError):
                raise BenchmarkFormatError(f"{where}: field 'proposition_id' is {row['proposition_id']!r}, "
                                           "expected an integer") from None
            dep_raw = (row["dependency"] or "").strip()
            if not re.fullmatch(r"\d+(\s*,\s*\d+)*", dep_raw):
                raise BenchmarkFormatError(f"{where}: field 'dependency' is {dep_raw!r}; expected '0' or "
                                           "comma-separated parent proposition ids")
            deps = [int(x) for x in dep_raw.split(",")]
            out[row["item_id"]].append(Question(pid, deps, row["question_natural_language"], row["tuple"] or ""))
    return dict(out)


def load_items(root: str | Path, reference_quirks: bool = True) -> list[DPGItem]:
    root = Path(root)
    questions = load_questions(root / "dpg_bench.csv", reference_quirks)
    prompt_dir = root / "prompts"
    if not prompt_dir.is_dir():
        raise EvaluationError(f"DPG-Bench prompts folder not found: {prompt_dir}")
    items = []
    for p in sorted(prompt_dir.glob("*.txt")):
        if p.stem not in questions:
            raise BenchmarkFormatError(f"{p}: item '{p.stem}' has no questions in dpg_bench.csv (item_id column)")
        items.append(DPGItem(p.stem, p.read_text().strip(), questions[p.stem]))
    if not items:
        raise EvaluationError(f"no prompts/*.txt under {root}")
    return items


def tile(images: Sequence[Any]) -> Image.Image:
    """The protocol's 2x2 grid of 4 images (dist_eval.sh PIC_NUM=4)."""
    from unipic.judges.images import to_pil

    pil = [to_pil(i) for i in images]
    if len(pil) != 4:
        raise EvaluationError(f"DPG-Bench tiles 4 images per prompt, got {len(pil)}; "
                              "set evaluation.generation.images_per_prompt=4")
    w, h = pil[0].size
    grid = Image.new("RGB", (2 * w, 2 * h))
    for k, im in enumerate(pil):
        grid.paste(im, ((k % 2) * w, (k // 2) * h))
    return grid


def crops(grid: Image.Image, pic_num: int = 4) -> list[Image.Image]:
    n = int(round(pic_num ** 0.5))
    w, h = grid.size[0] // n, grid.size[1] // n
    return [grid.crop((c * w, r * h, (c + 1) * w, (r + 1) * h)) for r in range(n) for c in range(n)]


def score_item(item: DPGItem, grid: Image.Image, vqa: VQA, pic_num: int = 4) -> dict[str, Any]:
    """compute_dpg_one_sample: per crop, exact-"yes" scores, parent zeroing, mean; then mean over crops."""
    crop_scores, last_orig, answers = [], {}, []
    cs = crops(grid, pic_num)
    pairs = [(c, q.question) for c in cs for q in item.questions]
    many = getattr(vqa, "answer_many", None)
    flat = many(pairs) if many else [vqa.answer(c, q) for c, q in pairs]
    for ci, crop in enumerate(cs):
        orig = {}
        for qi, q in enumerate(item.questions):
            a = flat[ci * len(item.questions) + qi]
            answers.append(a)
            orig[q.proposition_id] = 1.0 if a == "yes" else 0.0
        scored = dict(orig)
        for q in item.questions:
            if any(p != 0 and orig.get(p, 1.0) == 0.0 for p in q.dependency):
                scored[q.proposition_id] = 0.0
        crop_scores.append(float(np.mean(list(scored.values()))) if scored else 0.0)
        last_orig = orig
    return {"item_id": item.item_id, "prompt": item.prompt, "score": float(np.mean(crop_scores)),
            "crop_scores": crop_scores, "question_scores_last_crop": last_orig,
            "answers": answers[: len(item.questions)]}


def aggregate(items: Sequence[DPGItem], rows: Sequence[dict[str, Any]], missing: Sequence[str] = ()) -> dict[str, Any]:
    by_id = {i.item_id: i for i in items}
    l1: dict[str, list[float]] = defaultdict(list)
    l2: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        for q in by_id[r["item_id"]].questions:
            v = r["question_scores_last_crop"].get(q.proposition_id, 0.0)
            l1[q.category_l1].append(v)
            l2[q.category_l2].append(v)
    return {
        "overall": 100.0 * float(np.mean([r["score"] for r in rows])) if rows else float("nan"),
        "l1": {k: 100.0 * float(np.mean(v)) for k, v in sorted(l1.items())},
        "l2": {k: 100.0 * float(np.mean(v)) for k, v in sorted(l2.items())},
        "items": len(rows), "missing_images": list(missing),
    }


class JudgeVQA:
    """Any OpenAI-compatible VLM as DPG's VQA model: asks for a one-word yes/no answer and returns it
    lower-cased and stripped of punctuation; scoring keeps the reference's exact-'yes' match. An excluded
    (failed) call answers '' and is counted by the judge's stats."""

    PROMPT = "Answer the question about the image with one word, yes or no.\nQuestion: {q}"

    def __init__(self, judge: Any):
        from unipic.judges.openai_vlm import JudgeRequest

        self.judge, self._req = judge, JudgeRequest

    @staticmethod
    def _parse(text: str) -> tuple[list[float], str]:
        return [0.0], text.strip().strip(".!").lower()

    def answer(self, image: Image.Image, question: str) -> str:
        return self.answer_many([(image, question)])[0]

    def answer_many(self, pairs: Sequence[tuple[Image.Image, str]]) -> list[str]:
        """All questions of an item's crops in one concurrent batch."""
        reqs = [self._req(self.PROMPT.format(q=q), [img], self._parse) for img, q in pairs]
        return [v.reasoning if v.ok else "" for v in self.judge.judge_many(reqs)]
