"""GenEval (Ghosh et al., 2023; djghosh13/geneval), reimplemented with its detector and colour classifier
behind interfaces.

- Prompts: `build_prompts` follows `prompts/create_prompts.py` (seed 43, n per task, the six tasks, a/an,
  plurals, no coloured "person", de-duplication). `load_metadata` reads `evaluation_metadata.jsonl`.
- Layout: `<dir>/<NNNNN>/metadata.jsonl` + `samples/<NNNN>.png` (`write_layout` / `read_layout`).
- Scoring: `evaluate_clauses` is `evaluate_images.py::evaluate` - include clauses ANDed (the top-`count`
  detections, colour on those, position against the matched target group), exclude clauses ORed. Per-class
  detections are kept above `threshold` (0.3; 0.9 for counting), sorted by confidence, at most 16.
- Aggregation (`summary_scores.py`): per task the image-level mean of `correct`; overall = the unweighted
  mean of the task means.

Detectors: `Detector.detect(image) -> {class: [Detection]}`, `ColorClassifier.classify(image, dets, cls)`.
The ShapesWorld twin plugs in the exact detector (`ShapesWorldDetector`); the cluster plugs in
Mask2Former + OpenCLIP ViT-L-14 loaded from a directory (`Mask2FormerDetector`, `OpenCLIPColorClassifier`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml

from unipic.evaluation.errors import BenchmarkFormatError, EvaluationError

TASKS = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")
POSITIONS = ("left of", "right of", "above", "below")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
THRESHOLD, COUNTING_THRESHOLD, MAX_OBJECTS, POSITION_THRESHOLD = 0.3, 0.9, 16, 0.1


def with_article(name: str) -> str:
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def make_plural(name: str) -> str:
    return f"{name}es" if name[-1] == "s" else f"{name}s"


def build_prompts(classnames: Sequence[str], *, n: int = 100, seed: int = 43, colors: Sequence[str] = COLORS,
                  max_count: int = 4, no_color_class: str | None = "person", template: str = "a photo of {}"
                  ) -> list[dict[str, Any]]:
    """GenEval's construction rules over any class list (COCO's 80 for GenEval itself)."""
    classnames = list(classnames)
    rng = np.random.default_rng(seed)
    skip = classnames.index(no_color_class) if no_color_class in classnames else None

    def colorable(k: int) -> int:  # create_prompts.py: offset past "person" so it never gets a colour
        return (k + 1 + skip) % len(classnames) if skip is not None else k

    def p(text: str) -> str:
        return template.format(text)

    samples: list[dict[str, Any]] = []
    for idx in rng.choice(len(classnames), size=len(classnames), replace=False):
        samples.append({"tag": "single_object", "include": [{"class": classnames[idx], "count": 1}],
                        "prompt": p(with_article(classnames[idx]))})
    for _ in range(n):
        a, b = rng.choice(len(classnames), size=2, replace=False)
        samples.append({"tag": "two_object", "include": [{"class": classnames[a], "count": 1},
                                                         {"class": classnames[b], "count": 1}],
                        "prompt": p(f"{with_article(classnames[a])} and {with_article(classnames[b])}")})
    for _ in range(n):
        idx = rng.choice(len(classnames))
        num = int(rng.integers(2, max_count, endpoint=True))
        samples.append({"tag": "counting", "include": [{"class": classnames[idx], "count": num}],
                        "exclude": [{"class": classnames[idx], "count": num + 1}],
                        "prompt": p(f"{NUMBERS[num]} {make_plural(classnames[idx])}")})
    n_col = len(classnames) - (1 if skip is not None else 0)
    for _ in range(n):
        idx = colorable(int(rng.choice(n_col)))
        color = colors[rng.choice(len(colors))]
        samples.append({"tag": "colors", "include": [{"class": classnames[idx], "count": 1, "color": color}],
                        "prompt": p(f"{with_article(color)} {classnames[idx]}")})
    for _ in range(n):
        a, b = rng.choice(len(classnames), size=2, replace=False)
        rel = POSITIONS[rng.choice(len(POSITIONS))]
        samples.append({"tag": "position", "include": [{"class": classnames[b], "count": 1},
                                                       {"class": classnames[a], "count": 1,
                                                        "position": [rel, 0]}],
                        "prompt": p(f"{with_article(classnames[a])} {rel} {with_article(classnames[b])}")})
    for _ in range(n):
        ia, ib = (colorable(int(k)) for k in rng.choice(n_col, size=2, replace=False))
        ca, cb = rng.choice(len(colors), size=2, replace=False)
        samples.append({"tag": "color_attr",
                        "include": [{"class": classnames[ia], "count": 1, "color": colors[ca]},
                                    {"class": classnames[ib], "count": 1, "color": colors[cb]}],
                        "prompt": p(f"{with_article(colors[ca])} {classnames[ia]} and "
                                    f"{with_article(colors[cb])} {classnames[ib]}")})
    unique, seen = [], set()
    for s in samples:
        key = yaml.safe_dump(s)
        if key not in seen:
            unique.append(s)
            seen.add(key)
    return unique


def validate_metadata(m: Any, where: str) -> dict[str, Any]:
    """One metadata record; a clear error names the field that is wrong."""
    if not isinstance(m, dict):
        raise BenchmarkFormatError(f"{where}: expected a JSON object, got {type(m).__name__}")
    for key in ("tag", "prompt", "include"):
        if key not in m:
            raise BenchmarkFormatError(f"{where}: missing field '{key}' (GenEval metadata needs tag, prompt, include)")
    if m["tag"] not in TASKS:
        raise BenchmarkFormatError(f"{where}: field 'tag' is {m['tag']!r}; expected one of {', '.join(TASKS)}")
    for kind in ("include", "exclude"):
        for j, c in enumerate(m.get(kind, [])):
            if not isinstance(c, dict) or "class" not in c or not isinstance(c.get("count"), int):
                raise BenchmarkFormatError(f"{where}: field '{kind}[{j}]' needs 'class' and an integer 'count'")
            if "position" in c:
                pos = c["position"]
                if not (isinstance(pos, (list, tuple)) and len(pos) == 2 and pos[0] in POSITIONS
                        and isinstance(pos[1], int)):
                    raise BenchmarkFormatError(f"{where}: field '{kind}[{j}].position' must be [relation, group index]"
                                               f" with relation in {POSITIONS}")
    return m


def load_metadata(path: str | Path) -> list[dict[str, Any]]:
    """`evaluation_metadata.jsonl`: one JSON object per line."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"GenEval metadata not found: {path}; point evaluation.data_dir at a folder with "
                              "geneval/evaluation_metadata.jsonl")
    out = []
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BenchmarkFormatError(f"{path}:{i}: not JSON ({exc.msg}); GenEval metadata is JSON lines") from None
        out.append(validate_metadata(obj, f"{path}:{i}"))
    return out


@dataclass
class Detection:
    """One detected object: box [x1, y1, x2, y2], confidence, optional mask, and attributes a detector may
    know for free (the ShapesWorld detector knows colours exactly)."""

    box: tuple[float, float, float, float]
    score: float
    mask: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


class Detector(Protocol):
    def detect(self, image: np.ndarray) -> dict[str, list[Detection]]: ...


class ColorClassifier(Protocol):
    def classify(self, image: np.ndarray, detections: list[Detection], classname: str) -> list[str]: ...


def filter_detections(raw: dict[str, list[Detection]], tag: str, threshold: float = THRESHOLD,
                      counting_threshold: float = COUNTING_THRESHOLD, max_objects: int = MAX_OBJECTS
                      ) -> dict[str, list[Detection]]:
    thr = counting_threshold if tag == "counting" else threshold
    out = {}
    for cls, dets in raw.items():
        keep = sorted((d for d in dets if d.score > thr), key=lambda d: -d.score)[:max_objects]
        if keep:
            out[cls] = keep
    return out


def relative_position(a: Detection, b: Detection, threshold: float = POSITION_THRESHOLD) -> set[str]:
    boxes = np.array([a.box, b.box], dtype=np.float64).reshape(2, 2, 2)
    center_a, center_b = boxes.mean(axis=-2)
    dim_a, dim_b = np.abs(np.diff(boxes, axis=-2))[..., 0, :]
    offset = center_a - center_b
    revised = np.maximum(np.abs(offset) - threshold * (dim_a + dim_b), 0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    rels = set()
    if dx < -0.5:
        rels.add("left of")
    if dx > 0.5:
        rels.add("right of")
    if dy < -0.5:
        rels.add("above")
    if dy > 0.5:
        rels.add("below")
    return rels


def evaluate_clauses(image: np.ndarray, objects: dict[str, list[Detection]], metadata: dict[str, Any],
                     colors: ColorClassifier) -> tuple[bool, str]:
    """GenEval's `evaluate`: include clauses ANDed, exclude clauses ORed."""
    correct = True
    reason: list[str] = []
    matched_groups: list[list[Detection] | None] = []
    for req in metadata.get("include", []):
        cls = req["class"]
        matched = True
        found = objects.get(cls, [])[:req["count"]]
        if len(found) < req["count"]:
            correct = matched = False
            reason.append(f"expected {cls}>={req['count']}, found {len(found)}")
        else:
            if "color" in req:
                got = colors.classify(image, found, cls)
                if got.count(req["color"]) < req["count"]:
                    correct = matched = False
                    reason.append(f"expected {req['color']} {cls}>={req['count']}, found "
                                  f"{got.count(req['color'])} {req['color']}; and "
                                  + ", ".join(f"{got.count(c)} {c}" for c in dict.fromkeys(got)))
            if "position" in req and matched:
                rel, group = req["position"]
                if group >= len(matched_groups) or matched_groups[group] is None:
                    correct = matched = False
                    reason.append(f"no target for {cls} to be {rel}")
                else:
                    for obj in found:
                        for tgt in matched_groups[group]:
                            true_rels = relative_position(obj, tgt)
                            if rel not in true_rels:
                                correct = matched = False
                                reason.append(f"expected {cls} {rel} target, found {' and '.join(true_rels)} target")
                                break
                        if not matched:
                            break
        matched_groups.append(found if matched else None)
    for req in metadata.get("exclude", []):
        cls = req["class"]
        if len(objects.get(cls, [])) >= req["count"]:
            correct = False
            reason.append(f"expected {cls}<{req['count']}, found {len(objects[cls])}")
    return correct, "\n".join(reason)


def summarize(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """summary_scores.py: per-task image-level accuracy; overall = unweighted mean over tasks present.
    Also the secondary numbers it prints (% correct images, % prompts with any correct image)."""
    by_task: dict[str, list[bool]] = {}
    by_prompt: dict[str, list[bool]] = {}
    for r in results:
        by_task.setdefault(r["tag"], []).append(bool(r["correct"]))
        by_prompt.setdefault(f"{r['tag']}|{r['prompt']}", []).append(bool(r["correct"]))
    tasks = {t: float(np.mean(v)) for t, v in by_task.items()}
    return {
        "overall": float(np.mean(list(tasks.values()))) if tasks else float("nan"),
        "tasks": {t: tasks[t] for t in TASKS if t in tasks} | {t: v for t, v in tasks.items() if t not in TASKS},
        "images": len(results),
        "correct_images": float(np.mean([bool(r["correct"]) for r in results])) if results else float("nan"),
        "correct_prompts": float(np.mean([any(v) for v in by_prompt.values()])) if by_prompt else float("nan"),
    }


def write_layout(root: str | Path, index: int, metadata: dict[str, Any], images: Sequence[Any]) -> Path:
    """GenEval's generation layout for one prompt (what `evaluate_images.py` reads)."""
    from unipic.judges.images import to_pil

    folder = Path(root) / f"{index:05d}"
    (folder / "samples").mkdir(parents=True, exist_ok=True)
    (folder / "metadata.jsonl").write_text(json.dumps(metadata) + "\n")
    for k, img in enumerate(images):
        to_pil(img).save(folder / "samples" / f"{k:04d}.png")
    return folder


def read_layout(root: str | Path) -> list[tuple[dict[str, Any], list[Path]]]:
    root = Path(root)
    out = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit()):
        meta_file = folder / "metadata.jsonl"
        if not meta_file.is_file():
            raise BenchmarkFormatError(f"{folder}: missing metadata.jsonl")
        meta = validate_metadata(json.loads(meta_file.read_text().splitlines()[0]), str(meta_file))
        samples = sorted(p for p in (folder / "samples").glob("*.png") if p.stem.isdigit())
        out.append((meta, samples))
    return out


# --- detectors ----------------------------------------------------------------------------------------------
class ShapesWorldDetector:
    """The exact ShapesWorld detector in GenEval's detection format: classes are shapes, confidence is the
    template fit, and the colour read from the pixels rides along for `ShapesWorldColors`."""

    def __init__(self) -> None:
        from unipic.data.shapes.detect import ShapesDetector

        self._det = ShapesDetector()

    def detect(self, image: np.ndarray) -> dict[str, list[Detection]]:
        out: dict[str, list[Detection]] = {}
        for o in self._det.detect(np.asarray(image)).objects:
            x0, y0, x1, y1 = o.bbox
            out.setdefault(o.shape, []).append(
                Detection(box=(x0, y0, x1, y1), score=max(float(o.match), 0.95), attrs={"color": o.color}))
        return out


class ShapesWorldColors:
    def classify(self, image: np.ndarray, detections: list[Detection], classname: str) -> list[str]:
        return [d.attrs.get("color", "unknown") for d in detections]


class Mask2FormerDetector:
    """GenEval's detector (mmdet Mask2Former Swin-S, COCO) from a directory holding `config.py` and
    `model.pth`. Needs mmdet/mmcv 2.x and a GPU; neither is part of the local environment, so this path is
    exercised only on the cluster image."""

    def __init__(self, model_dir: str | Path, classnames: Sequence[str], device: str = "cuda"):
        try:
            from mmdet.apis import inference_detector, init_detector  # type: ignore[import-not-found]
        except ImportError:
            raise EvaluationError(
                "the GenEval Mask2Former detector needs mmdet/mmcv (the 'eval-gpu' image); locally use the "
                "ShapesWorld twin (--benchmark shapes_geneval)") from None
        d = Path(model_dir)
        self._model = init_detector(str(d / "config.py"), str(d / "model.pth"), device=device)
        self._infer = inference_detector
        self.classnames = list(classnames)

    def detect(self, image: np.ndarray) -> dict[str, list[Detection]]:
        result = self._infer(self._model, np.asarray(image)[..., ::-1])
        bbox = result[0] if isinstance(result, tuple) else result
        segm = result[1] if isinstance(result, tuple) and len(result) > 1 else None
        out: dict[str, list[Detection]] = {}
        for i, cls in enumerate(self.classnames):
            for j, row in enumerate(bbox[i]):
                out.setdefault(cls, []).append(Detection(box=tuple(row[:4]), score=float(row[4]),
                                                         mask=None if segm is None else segm[i][j]))
        return out


class OpenCLIPColorClassifier:
    """GenEval's zero-shot colour classifier (OpenCLIP ViT-L-14, three templates, crops on #999 outside the
    mask) from a directory holding `open_clip_pytorch_model.bin`. Needs open_clip, not installed locally."""

    def __init__(self, model_dir: str | Path, device: str = "cuda", arch: str = "ViT-L-14"):
        try:
            import open_clip  # type: ignore[import-not-found]
        except ImportError:
            raise EvaluationError(
                "the GenEval colour classifier needs open_clip_torch (the 'eval-gpu' image)") from None
        import torch

        ckpt = Path(model_dir) / "open_clip_pytorch_model.bin"
        self.model, _, self.transform = open_clip.create_model_and_transforms(arch, pretrained=str(ckpt), device=device)
        self.tokenizer = open_clip.get_tokenizer(arch)
        self.device, self._torch, self._cache = device, torch, {}

    def _weights(self, classname: str):
        if classname not in self._cache:
            torch = self._torch
            templates = [f"a photo of a {{c}} {classname}", f"a photo of a {{c}}-colored {classname}",
                         "a photo of a {c} object"]
            with torch.no_grad():
                ws = []
                for c in COLORS:
                    t = self.tokenizer([tt.format(c=c) for tt in templates]).to(self.device)
                    e = self.model.encode_text(t)
                    e = e / e.norm(dim=-1, keepdim=True)
                    m = e.mean(0)
                    ws.append(m / m.norm())
                self._cache[classname] = torch.stack(ws, 1)
        return self._cache[classname]

    def classify(self, image: np.ndarray, detections: list[Detection], classname: str) -> list[str]:
        from PIL import Image

        torch = self._torch
        img = Image.fromarray(np.asarray(image))
        blank = Image.new("RGB", img.size, "#999")
        crops = []
        for d in detections:
            im = Image.composite(img, blank, Image.fromarray(d.mask)) if d.mask is not None else img
            crops.append(self.transform(im.crop(tuple(int(v) for v in d.box))))
        with torch.no_grad():
            f = self.model.encode_image(torch.stack(crops).to(self.device))
            f = f / f.norm(dim=-1, keepdim=True)
            return [COLORS[i] for i in (f @ self._weights(classname)).argmax(1).tolist()]


def score_images(images: Sequence[np.ndarray], metadata: dict[str, Any], detector: Detector,
                 colors: ColorClassifier) -> list[dict[str, Any]]:
    """GenEval's `evaluate_image` for each image of one prompt: a results.jsonl row per image."""
    rows = []
    for img in images:
        arr = np.asarray(img)
        raw = detector.detect(arr)
        dets = filter_detections(raw, metadata["tag"])
        ok, reason = evaluate_clauses(arr, dets, metadata, colors)
        rows.append({"tag": metadata["tag"], "prompt": metadata["prompt"], "correct": ok, "reason": reason,
                     "details": {k: [list(map(float, d.box)) for d in v] for k, v in dets.items()}})
    return rows
