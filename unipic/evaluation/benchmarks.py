"""A benchmark = items + a generation step + a judge + an aggregation.

`make_benchmark(name, cfg, shapes)` builds one of:
- `shapes_geneval`: ShapesWorld twin of GenEval. Items from the ShapesWorld T2I stream (held-out split by
  default), each turned into GenEval metadata; scored by GenEval's clause logic with the exact ShapesWorld
  detector as detector and colour classifier. Also reports the stricter ShapesWorld rule (exact multiset,
  no extra objects) as `strict`.
- `shapes_gedit`: ShapesWorld twin of GEdit-Bench. Items from the ShapesWorld edit stream; scored by VIEScore
  SC / PQ / O through the OpenAI-compatible judge (locally the ShapesWorld judge server), per category.
- `geneval`, `dpg`, `gedit`, `imgedit`: the public benchmarks from their own files under `cfg.data_dir`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from unipic.evaluation import dpg, gedit, geneval, imgedit
from unipic.evaluation.errors import EvaluationError
from unipic.evaluation.generation import EvalItem, load_images

SHAPES_TO_GEDIT = {"recolor": "color_alter", "add": "subject-add", "remove": "subject-remove",
                   "replace": "subject-replace", "move": "motion_change",
                   "resize": "resize",  # no GEdit group; ImgEdit calls it "adjust"
                   "background": "background_change"}


@dataclass
class JudgeContext:
    """The judges a run uses (built once per run, shared by benchmarks)."""

    vlm: Any = None  # OpenAIVLMJudge

    def require_vlm(self, bench: str) -> Any:
        if self.vlm is None:
            raise EvaluationError(f"benchmark '{bench}' needs a VLM judge; set evaluation.judge_mode=local or "
                                  "evaluation.judge.base_url to an OpenAI-compatible endpoint")
        return self.vlm


class Benchmark:
    name: str = ""
    headline: str = "overall"
    scale: str = "0-1"
    reference_key: str | None = None  # column in the paper's table
    kind: str = "t2i"

    def __init__(self, cfg: Any, shapes: Any = None):
        self.cfg, self.shapes = cfg, shapes

    def images_per_prompt(self) -> int:
        return self.cfg.generation.images_per_prompt

    def items(self) -> list[EvalItem]:
        raise NotImplementedError

    def judge(self, items: Sequence[EvalItem], out: Path, ctx: JudgeContext) -> list[dict[str, Any]]:
        raise NotImplementedError

    def aggregate(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        raise NotImplementedError

    def _chunks(self, items: Sequence[EvalItem], out: Path, size: int = 64
                ) -> Iterator[tuple[list[EvalItem], dict[str, list[Image.Image]]]]:
        """Items with their images, `size` items at a time, so a 2,000-image benchmark at 512 px never sits in
        memory at once; missing images accumulate in `self.missing` (reported, not skipped silently)."""
        self.missing: list[str] = []
        for s in range(0, len(items), size):
            chunk = list(items[s:s + size])
            got, missing = self._images(chunk, out)
            self.missing += missing
            yield chunk, got

    def _images(self, items: Sequence[EvalItem], out: Path) -> tuple[dict[str, list[Image.Image]], list[str]]:
        got, missing = {}, []
        for it in items:
            imgs, miss = load_images(out, it, self.images_per_prompt())
            got[it.item_id] = imgs
            missing += [f"{it.item_id}/{k:02d}.png" for k in miss]
        return got, missing


# --- GenEval and its twin -------------------------------------------------------------------------------------
class GenEvalBenchmark(Benchmark):
    name, scale, reference_key = "geneval", "0-1", "GenEval"

    def __init__(self, cfg: Any, shapes: Any = None, detector: Any = None, colors: Any = None):
        super().__init__(cfg, shapes)
        self._detector, self._colors = detector, colors

    def items(self) -> list[EvalItem]:
        meta = geneval.load_metadata(Path(self.cfg.data_dir) / "geneval" / "evaluation_metadata.jsonl")
        return [EvalItem(f"{i:05d}", m["prompt"], m["tag"], meta={"geneval": m}) for i, m in enumerate(meta)]

    def scorers(self) -> tuple[Any, Any]:
        if self._detector is None:
            if self.cfg.geneval_detector == "shapesworld":
                self._detector, self._colors = geneval.ShapesWorldDetector(), geneval.ShapesWorldColors()
            else:
                if not self.cfg.geneval_model_dir:
                    raise EvaluationError("GenEval with Mask2Former needs evaluation.geneval_model_dir (a folder with "
                                          "mask2former/ and clip/); or set evaluation.geneval_detector=shapesworld")
                names = (Path(self.cfg.data_dir) / "geneval" / "object_names.txt").read_text().splitlines()
                root = Path(self.cfg.geneval_model_dir)
                self._detector = geneval.Mask2FormerDetector(root / "mask2former", names)
                self._colors = geneval.OpenCLIPColorClassifier(root / "clip")
        return self._detector, self._colors

    def judge(self, items: Sequence[EvalItem], out: Path, ctx: JudgeContext) -> list[dict[str, Any]]:
        det, col = self.scorers()
        rows = []
        for chunk, images in self._chunks(items, out):
            for it in chunk:
                for k, r in enumerate(geneval.score_images([np.asarray(i) for i in images[it.item_id]],
                                                           it.meta["geneval"], det, col)):
                    rows.append(r | {"item_id": it.item_id, "k": k} | self._extra(it, images[it.item_id][k]))
        return rows

    def _extra(self, item: EvalItem, image: Image.Image) -> dict[str, Any]:
        return {}

    def aggregate(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        out = geneval.summarize(rows)
        out["missing_images"] = getattr(self, "missing", [])
        return out


def shapes_configs(cfg: Any, shapes: Any) -> list[tuple[str, Any]]:
    """The ShapesWorld configs of the twins' splits: held-out compositions (never generated for training),
    train compositions (new scenes of seen compositions), or both, to measure the generalisation gap."""
    splits = {"heldout": ["heldout"], "train": ["train"], "all": ["train", "heldout"]}[cfg.split]
    size = cfg.image_size or shapes.image_size
    return [(sp, shapes.model_copy(update={"image_size": size, "seed": cfg.seed, "heldout": sp == "heldout"}))
            for sp in splits]


def _by_split(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r.get("split", "?"), []).append(r)
    return dict(sorted(out.items()))


def spec_to_geneval(spec: Any) -> dict[str, Any]:
    """ShapesWorld T2ISpec -> GenEval metadata. Shape is the class; when two requirements share a shape,
    the 'colour shape' class is used so GenEval's per-class top-k does not pick the same object twice."""
    reqs = spec.objects
    shared = len({r.shape for r in reqs}) < len(reqs)

    def clause(r: Any) -> dict[str, Any]:
        c: dict[str, Any] = {"class": f"{r.color} {r.shape}" if shared and r.color else r.shape, "count": r.count}
        if r.color:
            c["color"] = r.color
        return c

    if spec.relation is not None:
        a, b = reqs[spec.relation.subject], reqs[spec.relation.reference]
        include = [clause(b), clause(a) | {"position": [spec.relation.relation, 0]}]
    else:
        include = [clause(r) for r in reqs]
    meta: dict[str, Any] = {"tag": spec.task, "include": include, "prompt": spec.caption}
    if spec.task == "counting":
        meta["exclude"] = [{"class": reqs[0].shape, "count": reqs[0].count + 1}]
    return meta


class _ShapesLabelDetector(geneval.ShapesWorldDetector):
    """Emits each object under its shape class and under its 'colour shape' class."""

    def detect(self, image: np.ndarray) -> dict[str, list[geneval.Detection]]:
        out: dict[str, list[geneval.Detection]] = {}
        for o in self._det.detect(np.asarray(image)).objects:
            d = geneval.Detection(box=o.bbox, score=max(float(o.match), 0.95), attrs={"color": o.color})
            out.setdefault(o.shape, []).append(d)
            out.setdefault(f"{o.color} {o.shape}", []).append(d)
        return out


def arrangement_with_control(rows: Sequence[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """Per task: how often an image has the arrangement its prompt asks for (`arrangement_ok`: count, colours,
    relation; shapes ignored), and the same for a prompt-swap control: each image read against the next other
    prompt of its task. The control is what the task's usual layout earns without reading the prompt, so the gap
    between the two is what the model takes from the text."""
    from unipic.data.shapes.score import arrangement_ok

    by_task: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if "arrangement" in r:
            by_task.setdefault(r["tag"], []).append(r)
    real, control = {}, {}
    for task, rs in by_task.items():
        real[task] = float(np.mean([bool(r["arrangement"]) for r in rs]))
        swapped = []
        for i, r in enumerate(rs):
            other = next((o for o in rs[i + 1:] + rs[:i] if o["prompt"] != r["prompt"]), None)
            if other is not None:
                swapped.append(arrangement_ok(r["detected"], other["spec"]))
        control[task] = float(np.mean(swapped)) if swapped else float("nan")
    return real, control


class ShapesGenEvalBenchmark(GenEvalBenchmark):
    name, reference_key = "shapes_geneval", "GenEval"

    def __init__(self, cfg: Any, shapes: Any):
        super().__init__(cfg, shapes, _ShapesLabelDetector(), geneval.ShapesWorldColors())

    def items(self) -> list[EvalItem]:
        from unipic.data.shapes.t2i import make_t2i_sample

        items = []
        for split, scfg in shapes_configs(self.cfg, self.shapes):
            for i in range(self.cfg.n_per_task * len(scfg.t2i_tasks)):
                s = make_t2i_sample(scfg, i)
                items.append(EvalItem(f"t2i-{split}-{i:05d}", s.caption, s.task,
                                      meta={"geneval": spec_to_geneval(s.spec), "spec": s.spec.model_dump(),
                                            "split": s.split, "scene": s.scene.to_dict()}))
        return items

    def _extra(self, item: EvalItem, image: Image.Image) -> dict[str, Any]:
        """The stricter ShapesWorld rule from `unipic.data.shapes.score` (exact multiset, no extra objects)."""
        from unipic.data.shapes.score import score_t2i

        sc = score_t2i([np.asarray(image)], [item.meta["spec"]])[0]
        return {"strict": sc.correct, "strict_reason": sc.reason, "graded": sc.score, "cleanliness": sc.cleanliness,
                "split": item.meta["split"], "arrangement": sc.components["arrangement_ok"],
                "spec": item.meta["spec"], "detected": sc.detected}

    def aggregate(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        out = super().aggregate(rows)
        strict: dict[str, list[bool]] = {}
        for r in rows:
            strict.setdefault(r["tag"], []).append(bool(r.get("strict")))
        out["strict_tasks"] = {t: float(np.mean(v)) for t, v in strict.items()}
        out["strict"] = float(np.mean(list(out["strict_tasks"].values()))) if strict else float("nan")
        out["cleanliness"] = float(np.mean([r["cleanliness"] for r in rows])) if rows else float("nan")
        out["arrangement_tasks"], out["arrangement_control_tasks"] = arrangement_with_control(rows)
        out["by_split"] = {sp: {"overall": geneval.summarize(rs)["overall"],
                                "strict": float(np.mean([bool(r.get("strict")) for r in rs]))}
                           for sp, rs in _by_split(rows).items()}
        return out


# --- GEdit-Bench and its twin ---------------------------------------------------------------------------------
class GEditBenchmark(Benchmark):
    name, scale, reference_key, kind = "gedit", "0-10", "GEdit-EN", "edit"

    def images_per_prompt(self) -> int:
        return 1

    def items(self) -> list[EvalItem]:
        root = Path(self.cfg.data_dir) / "gedit"
        path = next((root / n for n in ("gedit_bench.parquet", "gedit_bench.jsonl") if (root / n).is_file()),
                    root / "gedit_bench.parquet")
        return [EvalItem(f"{r.task_type}-{r.key}", r.instruction, r.task_type, source=r.source,
                         meta={"intersection": r.intersection, "key": r.key})
                for r in gedit.load_items(path, self.cfg.gedit_language)]

    def judge(self, items: Sequence[EvalItem], out: Path, ctx: JudgeContext) -> list[dict[str, Any]]:
        vlm = ctx.require_vlm(self.name)
        rows = []
        for chunk, images in self._chunks(items, out):
            todo = [it for it in chunk if images[it.item_id]]
            edited = [gedit.resize_to_source(images[it.item_id][0], it.source) for it in todo]
            results = vlm.viescore_edit([it.source for it in todo], edited, [it.prompt for it in todo])
            for it, img, (res, sc_v, pq_v) in zip(todo, edited, results, strict=True):
                rows.append({"item_id": it.item_id, "k": 0, "group": it.group, "prompt": it.prompt,
                             "intersection": it.meta.get("intersection", False), "sc": res.sc, "pq": res.pq,
                             "o": res.overall, "sc_raw": sc_v.scores, "pq_raw": pq_v.scores,
                             "reasoning": sc_v.reasoning or sc_v.detail,
                             "judge_errors": [v.error for v in (sc_v, pq_v) if not v.ok]} | self._exact(it, img))
        return rows

    def _exact(self, item: EvalItem, edited: Image.Image) -> dict[str, Any]:
        return {}

    def aggregate(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        out = gedit.aggregate(rows)
        out["missing_images"] = getattr(self, "missing", [])
        return out


class ShapesGEditBenchmark(GEditBenchmark):
    """VIEScore through the judge (the GEdit metric, headline) plus the exact structured edit score
    (`unipic.data.shapes.score.score_edit`: instruction satisfied x preservation) per category."""

    name = "shapes_gedit"

    def _exact(self, item: EvalItem, edited: Image.Image) -> dict[str, Any]:
        from unipic.data.shapes.score import score_edit

        sc = score_edit([np.asarray(item.source)], [np.asarray(edited)], [item.meta["spec"]])[0]
        return {"exact_success": sc.success, "exact_instruction": sc.instruction_satisfied,
                "exact_preservation": sc.preservation, "exact_overall": sc.overall, "exact_reason": sc.reason,
                "cleanliness": sc.cleanliness, "gedit_group": item.meta["gedit_group"], "split": item.meta["split"]}

    def aggregate(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        out = super().aggregate(rows)
        cats: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            cats.setdefault(r["group"], []).append(r)
        out["exact"] = {c: {"success": float(np.mean([r["exact_success"] for r in rs])),
                            "instruction": float(np.mean([r["exact_instruction"] for r in rs])),
                            "preservation": float(np.mean([r["exact_preservation"] for r in rs])),
                            "overall": float(np.mean([r["exact_overall"] for r in rs]))}
                        for c, rs in sorted(cats.items())}
        out["exact_success"] = float(np.mean([v["success"] for v in out["exact"].values()])) if cats else float("nan")
        out["exact_overall"] = float(np.mean([v["overall"] for v in out["exact"].values()])) if cats else float("nan")
        out["by_split"] = {sp: {"overall": gedit.aggregate(rs)["overall"],
                                "exact_success": float(np.mean([r["exact_success"] for r in rs]))}
                           for sp, rs in _by_split(rows).items()}
        return out

    def items(self) -> list[EvalItem]:
        from unipic.data.shapes.edits import make_edit_sample
        from unipic.data.shapes.render import render

        items = []
        for split, scfg in shapes_configs(self.cfg, self.shapes):
            for i in range(self.cfg.n_per_task * len(scfg.edit_categories)):
                s = make_edit_sample(scfg, i)
                items.append(EvalItem(f"edit-{split}-{i:05d}", s.instruction, s.category,
                                      source=Image.fromarray(render(s.source)),
                                      meta={"gedit_group": SHAPES_TO_GEDIT.get(s.category, s.category),
                                            "split": s.split, "spec": s.spec.model_dump(mode="json"),
                                            "target": s.target.to_dict()}))
        return items


# --- DPG-Bench ------------------------------------------------------------------------------------------------
class DPGBenchmark(Benchmark):
    name, scale, reference_key = "dpg", "0-100", "DPG"

    def images_per_prompt(self) -> int:
        return 4

    def items(self) -> list[EvalItem]:
        self._items = dpg.load_items(Path(self.cfg.data_dir) / "dpg", self.cfg.dpg_reference_quirks)
        return [EvalItem(i.item_id, i.prompt, "dpg", meta={}) for i in self._items]

    def judge(self, items: Sequence[EvalItem], out: Path, ctx: JudgeContext) -> list[dict[str, Any]]:
        vqa = dpg.JudgeVQA(ctx.require_vlm(self.name))
        by_id = {i.item_id: i for i in self._items}
        rows = []
        for chunk, images in self._chunks(items, out):
            for it in chunk:
                if len(images[it.item_id]) != 4:
                    continue
                r = dpg.score_item(by_id[it.item_id], dpg.tile(images[it.item_id]), vqa)
                rows.append(r | {"k": 0, "group": "dpg"})
        return rows

    def aggregate(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return dpg.aggregate(self._items, rows, getattr(self, "missing", []))


# --- ImgEdit --------------------------------------------------------------------------------------------------
class ImgEditBenchmark(Benchmark):
    name, scale, reference_key, kind = "imgedit", "1-5", "ImgEdit", "edit"

    def images_per_prompt(self) -> int:
        return 1

    def items(self) -> list[EvalItem]:
        root = Path(self.cfg.data_dir) / "imgedit"
        self._rubrics = imgedit.load_rubrics(root / "prompts.json")
        items = []
        for r in imgedit.load_items(root):
            if r.edit_type not in self._rubrics:
                raise EvaluationError(f"ImgEdit item '{r.key}' has edit_type '{r.edit_type}' with no rubric in "
                                      "prompts.json")
            items.append(EvalItem(f"imgedit-{r.key}", r.prompt, r.edit_type, source=r.source, meta={"key": r.key}))
        return items

    def judge(self, items: Sequence[EvalItem], out: Path, ctx: JudgeContext) -> list[dict[str, Any]]:
        from unipic.judges.openai_vlm import JudgeRequest, rubric_parser

        vlm = ctx.require_vlm(self.name)
        rows = []
        for chunk, images in self._chunks(items, out):
            todo = [it for it in chunk if images[it.item_id]]
            reqs = []
            for it in todo:
                rubric = self._rubrics[it.group]
                reqs.append(JudgeRequest(imgedit.rubric_prompt(rubric, it.prompt), [it.source, images[it.item_id][0]],
                                         rubric_parser(imgedit.rubric_dimensions(rubric)), key=it.item_id))
            verdicts = vlm.judge_many(reqs)
            rows += [{"item_id": it.item_id, "k": 0, "group": it.group, "edit_type": it.group, "prompt": it.prompt,
                      "scores": v.scores if v.ok else None, "reasoning": v.reasoning or v.detail,
                      "judge_errors": [] if v.ok else [v.error]} for it, v in zip(todo, verdicts, strict=True)]
        return rows

    def aggregate(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        out = imgedit.aggregate(rows)
        out["missing_images"] = getattr(self, "missing", [])
        return out


REGISTRY = {"shapes_geneval": ShapesGenEvalBenchmark, "shapes_gedit": ShapesGEditBenchmark,
            "geneval": GenEvalBenchmark, "dpg": DPGBenchmark, "gedit": GEditBenchmark, "imgedit": ImgEditBenchmark}


def make_benchmark(name: str, cfg: Any, shapes: Any) -> Benchmark:
    if name not in REGISTRY:
        raise EvaluationError(f"unknown benchmark '{name}'; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name](cfg, shapes)


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
