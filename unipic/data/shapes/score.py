"""Scorers: the T2I and editing rewards and the judges of the ShapesWorld twins of GenEval and GEdit-Bench.

`score_t2i(images, specs)`: GenEval-style strict `correct` per image (exact multiset of (shape, colour), the
relation for `position`), a graded `score` in [0, 1] (Dice overlap of requested and detected objects with half
credit for a right shape in a wrong colour; for `position` half of it is the relation) and diagnostics.

`score_edit(sources, outputs, specs)`: `instruction_satisfied` (did the named change happen) and `preservation`
(everything the instruction did not touch is unchanged: each preserved object keeps shape, colour, size class and
position; the background keeps its colour; nothing new appears), combined as overall = sqrt(instruction *
preservation), the same geometric mean GEdit-Bench uses for semantics and quality.

Both report `cleanliness` (see detect.py) separately: it is not folded into the score, so an RL recipe decides how
to weigh it (e.g. reward = score * cleanliness) and a benchmark reports it next to accuracy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from unipic.data.shapes.detect import DetectedObject, Detection, ShapesDetector
from unipic.data.shapes.edits import EditSpec
from unipic.data.shapes.t2i import T2ISpec
from unipic.data.shapes.world import SIZES, relations

_DETECTOR = ShapesDetector()


@dataclass
class T2IScore:
    task: str
    correct: bool
    score: float
    cleanliness: float
    reason: str
    components: dict[str, Any] = field(default_factory=dict)
    detected: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EditScore:
    category: str
    success: bool
    instruction_satisfied: bool
    instruction_score: float
    preservation: float
    overall: float
    cleanliness: float
    reason: str
    components: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _describe(objs: Sequence[DetectedObject]) -> str:
    if not objs:
        return "nothing"
    counts = Counter(f"{o.color} {o.shape}" for o in objs)
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


def _field(o: DetectedObject | dict[str, Any], name: str) -> Any:
    return o[name] if isinstance(o, dict) else getattr(o, name)


def arrangement_ok(objects: Sequence[DetectedObject | dict[str, Any]], spec: T2ISpec | dict[str, Any]) -> bool:
    """The composition a prompt asks for with shapes ignored: the right number of objects, the right colours and,
    for `position`, the relation between the objects of the subject's and the reference's colour.

    The strict rule needs every shape exact, so on a model that draws ragged shapes it cannot tell a wrong layout
    from a wrong outline; this reads the layout alone. Where both colours fit both objects (same-colour pairs), the
    assignment that matches more shapes decides, and a tie counts only if every tied assignment holds the relation.
    """
    spec = spec if isinstance(spec, T2ISpec) else T2ISpec.model_validate(spec)
    if len(objects) != spec.n_objects:
        return False
    wanted = [r.color for r in spec.objects for _ in range(r.count)]
    if None not in wanted and Counter(wanted) != Counter(_field(o, "color") for o in objects):
        return False
    rel = spec.relation
    if rel is None:
        return True
    subj, ref = spec.objects[rel.subject], spec.objects[rel.reference]
    options = [(sum((_field(a, "shape") == subj.shape, _field(b, "shape") == ref.shape)), a, b)
               for a in objects for b in objects if a is not b
               and subj.color in (None, _field(a, "color")) and ref.color in (None, _field(b, "color"))]
    best = max((n for n, _, _ in options), default=-1)
    return best >= 0 and all(rel.relation in relations(_field(a, "bbox"), _field(b, "bbox"))
                             for n, a, b in options if n == best)


def score_t2i_detection(det: Detection, spec: T2ISpec | dict[str, Any]) -> T2IScore:
    """Score one detection against a T2I spec (the part of `score_t2i` after detection)."""
    spec = spec if isinstance(spec, T2ISpec) else T2ISpec.model_validate(spec)
    slots = [(i, r.shape, r.color) for i, r in enumerate(spec.objects) for _ in range(r.count)]
    objs = det.objects
    n_req, n_det = len(slots), len(objs)
    pair = np.zeros((n_req, n_det))
    for a, (_, shape, color) in enumerate(slots):
        for b, o in enumerate(objs):
            if color is None:
                pair[a, b] = 1.0 if o.shape == shape else 0.0
            else:
                pair[a, b] = 0.5 * (o.shape == shape) + 0.5 * (o.color == color)
    rows, cols = linear_sum_assignment(-pair) if n_req and n_det else (np.array([], int), np.array([], int))
    matched = float(pair[rows, cols].sum())
    object_score = 2.0 * matched / (n_req + n_det) if (n_req + n_det) else 1.0
    exact = n_req == n_det and bool(np.all(pair[rows, cols] == 1.0)) and len(rows) == n_req

    relation_ok: bool | None = None
    if spec.relation is not None:
        assigned = {slots[a][0]: objs[b] for a, b in zip(rows, cols) if pair[a, b] == 1.0}
        subj, ref = assigned.get(spec.relation.subject), assigned.get(spec.relation.reference)
        relation_ok = bool(subj and ref and spec.relation.relation in relations(subj.bbox, ref.bbox))
        score = 0.5 * object_score + 0.5 * float(relation_ok)
    else:
        score = object_score
    correct = exact and relation_ok is not False
    if correct:
        score = 1.0
    colored = [r.color for r in spec.objects if r.color]
    components: dict[str, Any] = {
        "n_required": n_req,
        "n_detected": n_det,
        "count_ok": n_req == n_det,
        "shapes_ok": Counter(s for _, s, _ in slots) == Counter(o.shape for o in objs),
        "colors_ok": (Counter(c for _, _, c in slots) == Counter(o.color for o in objs))
        if len(colored) == len(spec.objects) else None,
        "relation_ok": relation_ok,
        "arrangement_ok": arrangement_ok(objs, spec),
        "object_score": object_score,
        "background": det.background,
        "background_rms": det.background_rms,
        "object_rms": det.object_rms,
    }
    wanted = ", ".join(f"{r.count} {r.item}" for r in spec.objects)
    if correct:
        reason = "ok"
    elif exact:
        reason = f"objects ok, but not '{spec.relation.relation}'" if spec.relation else "objects ok"
    else:
        reason = f"expected {wanted}; found {_describe(objs)}"
    return T2IScore(task=spec.task, correct=correct, score=float(score), cleanliness=det.cleanliness,
                    reason=reason, components=components, detected=[o.to_dict() for o in objs])


def score_t2i(images: Sequence[np.ndarray] | np.ndarray, specs: Sequence[T2ISpec | dict[str, Any]],
              detector: ShapesDetector | None = None) -> list[T2IScore]:
    """Score generated images against their prompts' specs; one T2IScore per image."""
    if len(images) != len(specs):
        raise ValueError(f"got {len(images)} images but {len(specs)} specs")
    det = detector or _DETECTOR
    return [score_t2i_detection(d, s) for d, s in zip(det.detect_batch(images), specs)]


# ---------------------------------------------------------------------------------------------- editing


def _dist(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


def _match_preserved(preserved: list[DetectedObject], outputs: list[DetectedObject], tol: float) -> list[int | None]:
    """For each preserved object, the index of the unchanged output object it matches (or None)."""
    if not preserved or not outputs:
        return [None] * len(preserved)
    big = 1e6
    cost = np.full((len(preserved), len(outputs)), big)
    for i, p in enumerate(preserved):
        for j, o in enumerate(outputs):
            d = _dist(p.center, o.center)
            if o.shape == p.shape and o.color == p.color and o.size == p.size and d <= tol:
                cost[i, j] = d
    rows, cols = linear_sum_assignment(cost)
    out: list[int | None] = [None] * len(preserved)
    for r, c in zip(rows, cols):
        if cost[r, c] < big:
            out[r] = int(c)
    return out


def _rescaled(det: Detection, size: tuple[int, int]) -> Detection:
    """A detection expressed in the pixel frame of another canvas size (an output at a different resolution)."""
    sy, sx = size[0] / det.size[0], size[1] / det.size[1]
    objs = [replace(o, center=(o.center[0] * sx, o.center[1] * sy),
                    bbox=(round(o.bbox[0] * sx), round(o.bbox[1] * sy), round(o.bbox[2] * sx), round(o.bbox[3] * sy)))
            for o in det.objects]
    return replace(det, size=size, objects=objs)


def _locate_target(spec: EditSpec, src: Detection) -> tuple[int | None, tuple[float, float] | None]:
    """The detected source object the instruction names, and its centre (in source image pixels)."""
    t = spec.target_object
    if t is None:
        return None, None
    scale = src.size[1] / float(spec.image_size) if spec.image_size else 1.0
    centre = (t.center[0] * scale, t.center[1] * scale)
    best, best_d = None, float("inf")
    for i, o in enumerate(src.objects):
        if o.shape == t.shape and o.color == t.color:
            d = _dist(o.center, centre)
            if d < best_d:
                best, best_d = i, d
    if best is None:
        return None, centre
    return best, src.objects[best].center


def _instruction(spec: EditSpec, target: DetectedObject | None, centre: tuple[float, float] | None,
                 free: list[DetectedObject], out: Detection, canvas: int, tol: float) -> tuple[float, int | None, str]:
    """(graded instruction score, index in `free` of the object the edit produced, reason)."""
    cat, p = spec.category, spec.params
    t_shape = target.shape if target else (spec.target_object.shape if spec.target_object else None)
    t_color = target.color if target else (spec.target_object.color if spec.target_object else None)
    t_size = target.size if target else (spec.target_object.size if spec.target_object else None)

    def near(o: DetectedObject, r: float = tol) -> bool:
        return centre is not None and _dist(o.center, centre) <= r

    if cat == "background":
        ok = out.background == p["background"]
        return float(ok), None, "ok" if ok else f"background is {out.background}, wanted {p['background']}"
    if cat == "add":
        exact = [j for j, o in enumerate(free) if o.shape == p["shape"] and o.color == p["color"]]
        if exact:
            return 1.0, exact[0], "ok"
        half = [j for j, o in enumerate(free) if o.shape == p["shape"] or o.color == p["color"]]
        if half:
            return 0.5, half[0], f"added {free[half[0]].color} {free[half[0]].shape}, wanted {p['color']} {p['shape']}"
        return 0.0, None, f"no new {p['color']} {p['shape']}"
    if centre is None:
        return 0.0, None, "the named object is not in the source image"
    if cat == "recolor":
        for j, o in enumerate(free):
            if near(o) and o.color == p["color"]:
                if o.shape == t_shape and o.size == t_size:
                    return 1.0, j, "ok"
                return 0.5, j, f"recoloured, but became a {o.size} {o.shape}"
        return 0.0, None, f"no {p['color']} {t_shape} where the {t_color} {t_shape} was"
    if cat == "remove":
        left = [j for j, o in enumerate(free) if near(o)]
        if not left:
            return 1.0, None, "ok"
        return 0.0, None, f"the {t_color} {t_shape} is still there"
    if cat == "replace":
        for j, o in enumerate(free):
            if near(o) and o.shape == p["shape"]:
                if o.color == t_color:
                    return 1.0, j, "ok"
                return 0.5, j, f"replaced, but the colour became {o.color}"
        return 0.0, None, f"no {t_color} {p['shape']} where the {t_shape} was"
    if cat == "move":
        ux, uy = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[p["direction"]]
        best: tuple[float, int | None, str] = (0.0, None, f"the {t_color} {t_shape} did not move {p['direction']}")
        for j, o in enumerate(free):
            if o.shape != t_shape or o.color != t_color:
                continue
            dx, dy = o.center[0] - centre[0], o.center[1] - centre[1]
            along, perp = dx * ux + dy * uy, abs(dx * uy - dy * ux)
            if along >= 0.1 * canvas:
                if perp <= max(tol, 0.5 * along) and o.size == t_size:
                    return 1.0, j, "ok"
                best = (0.5, j, "moved, but drifted sideways or changed size")
        return best
    if cat == "resize":
        want_bigger = p["direction"] == "bigger"
        for j, o in enumerate(free):
            if o.shape == t_shape and o.color == t_color and near(o, max(tol, 0.1 * canvas)) and t_size:
                grew, shrank = SIZES[o.size] > SIZES[t_size], SIZES[o.size] < SIZES[t_size]
                if (want_bigger and grew) or (not want_bigger and shrank):
                    return 1.0, j, "ok"
        return 0.0, None, f"the {t_color} {t_shape} did not get {p['direction']}"
    raise ValueError(f"unknown edit category '{cat}'")


def score_edit_detections(src: Detection, out: Detection, spec: EditSpec | dict[str, Any]) -> EditScore:
    """Score one edit from the detections of its source and output images."""
    spec = spec if isinstance(spec, EditSpec) else EditSpec.model_validate(spec)
    if out.size != src.size:
        out = _rescaled(out, src.size)
    canvas = min(src.size)
    tol = max(2.0, 0.06 * canvas)
    t_idx, centre = _locate_target(spec, src)
    target = src.objects[t_idx] if t_idx is not None else None
    preserved = [o for i, o in enumerate(src.objects) if i != t_idx]
    match = _match_preserved(preserved, out.objects, tol)
    used = {m for m in match if m is not None}
    free = [o for j, o in enumerate(out.objects) if j not in used]

    instr, edited, why = _instruction(spec, target, centre, free, out, canvas, tol)
    claimed = {edited} if edited is not None else set()
    if edited is None and target is not None and centre is not None:
        # The named object left as it was: the instruction already failed, it is not also an extra.
        stale = [j for j, o in enumerate(free) if o.shape == target.shape and o.color == target.color
                 and _dist(o.center, centre) <= tol]
        claimed.update(stale[:1])
    n_extra = len(free) - len(claimed)
    kept = sum(m is not None for m in match)
    bg_ok = out.background == src.background if spec.preserve_background else None
    denom = len(preserved) + (1 if bg_ok is not None else 0) + n_extra
    preservation = (kept + int(bool(bg_ok))) / denom if denom else 1.0
    satisfied = instr == 1.0
    problems = []
    if kept < len(preserved):
        problems.append(f"{len(preserved) - kept} untouched object(s) changed or missing")
    if bg_ok is False:
        problems.append(f"background changed to {out.background}")
    if n_extra:
        problems.append(f"{n_extra} unexpected object(s)")
    reason = "; ".join(([] if satisfied else [f"instruction: {why}"]) + problems) or "ok"
    return EditScore(
        category=spec.category, success=satisfied and preservation == 1.0, instruction_satisfied=satisfied,
        instruction_score=float(instr), preservation=float(preservation),
        overall=float(np.sqrt(instr * preservation)), cleanliness=out.cleanliness, reason=reason,
        components={"preserved_total": len(preserved), "preserved_kept": kept, "background_ok": bg_ok,
                    "extra_objects": n_extra, "target_found": t_idx is not None,
                    "n_source": len(src.objects), "n_output": len(out.objects),
                    "background_rms": out.background_rms, "object_rms": out.object_rms},
    )


def score_edit(sources: Sequence[np.ndarray] | np.ndarray, outputs: Sequence[np.ndarray] | np.ndarray,
               edit_specs: Sequence[EditSpec | dict[str, Any]], detector: ShapesDetector | None = None
               ) -> list[EditScore]:
    """Score edited images against their sources and instructions; one EditScore per triplet."""
    if not (len(sources) == len(outputs) == len(edit_specs)):
        raise ValueError(f"got {len(sources)} sources, {len(outputs)} outputs and {len(edit_specs)} specs")
    det = detector or _DETECTOR
    return [score_edit_detections(s, o, e)
            for s, o, e in zip(det.detect_batch(sources), det.detect_batch(outputs), edit_specs)]


def cleanliness(images: Sequence[np.ndarray] | np.ndarray, detector: ShapesDetector | None = None) -> list[float]:
    """Per-image flatness in (0, 1]: 1 for a clean render, lower with background or in-object noise."""
    return [d.cleanliness for d in (detector or _DETECTOR).detect_batch(images)]


def summarize_t2i(scores: Sequence[T2IScore]) -> dict[str, Any]:
    """GenEval aggregation: per-task mean of `correct` (and of the graded score); overall = the unweighted mean
    of the task means, so a task with more images does not weigh more."""
    by_task: dict[str, list[T2IScore]] = {}
    for s in scores:
        by_task.setdefault(s.task, []).append(s)
    tasks = {t: {"accuracy": float(np.mean([s.correct for s in v])), "score": float(np.mean([s.score for s in v])),
                 "cleanliness": float(np.mean([s.cleanliness for s in v])), "n": len(v)}
             for t, v in sorted(by_task.items())}
    overall = float(np.mean([t["accuracy"] for t in tasks.values()])) if tasks else 0.0
    return {"overall": overall, "tasks": tasks, "n": len(scores)}


def summarize_edit(scores: Sequence[EditScore]) -> dict[str, Any]:
    """GEdit-Bench aggregation: per-category means; headline numbers are unweighted means over categories."""
    by_cat: dict[str, list[EditScore]] = {}
    for s in scores:
        by_cat.setdefault(s.category, []).append(s)
    cats = {c: {"success": float(np.mean([s.success for s in v])),
                "instruction": float(np.mean([s.instruction_satisfied for s in v])),
                "preservation": float(np.mean([s.preservation for s in v])),
                "overall": float(np.mean([s.overall for s in v])), "n": len(v)}
            for c, v in sorted(by_cat.items())}

    def mean(key: str) -> float:
        return float(np.mean([c[key] for c in cats.values()])) if cats else 0.0

    return {"overall": mean("overall"), "success": mean("success"), "instruction": mean("instruction"),
            "preservation": mean("preservation"), "categories": cats, "n": len(scores)}
