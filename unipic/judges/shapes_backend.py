"""The ShapesWorld judge behind the local server: the exact detector reads the images, `shapes_text` reads
the caption or instruction, and the answer is put on each protocol's scale.

- T2I SC (0-10): 10 when the detected objects are exactly what the caption asks for (GenEval-strict: right
  counts, colours, no extra objects, the relation holds), otherwise the share of requested objects found,
  discounted by extra objects; 5 when the objects are right but the relation is not.
- Edit SC (0-10, 0-10): [edit success, absence of over-editing]. Success is 10 when the instructed change
  is visible on the instructed object, 0 otherwise; the second score is the share of everything the
  instruction did not touch (other objects, the background) that is preserved, discounted by new objects.
- PQ (0-10, 0-10): [naturalness, artifacts] from the detector's flatness measure (`cleanliness`) and how
  well each object fits its shape template, so noise the object counter ignores is visible here.
- ImgEdit rubric (1-5 x 3): compliance from edit success, the other two capped by it, as the rubric says.
- KServe scorer ([0, 1]): success x preservation for edits, SC/10 for T2I.
"""

from __future__ import annotations

import math
import re

import numpy as np
from PIL import Image

from unipic.data.shapes.detect import DetectedObject, Detection, ShapesDetector
from unipic.data.shapes.world import SIZES, relations
from unipic.judges.shapes_text import CaptionSpec, EditInstruction, ObjectPhrase, parse_caption, parse_instruction

_SIZE_RANK = {name: i for i, name in enumerate(SIZES)}


def _assign(phrases: list[ObjectPhrase], objects: list[DetectedObject]) -> list[list[DetectedObject]]:
    """Greedy matching, most specific phrases first: each phrase takes up to `count` unused objects."""
    used: set[int] = set()
    out: list[list[DetectedObject]] = [[] for _ in phrases]
    order = sorted(range(len(phrases)), key=lambda i: -(phrases[i].color is not None) - (phrases[i].shape
                                                                                         is not None))
    for i in order:
        p = phrases[i]
        for j, o in enumerate(objects):
            if j not in used and len(out[i]) < p.count and p.matches(o.shape, o.color, o.size):
                used.add(j)
                out[i].append(o)
    return out


def score_caption(det: Detection, spec: CaptionSpec) -> tuple[int, str]:
    matched = _assign(spec.objects, det.objects)
    want = sum(p.count for p in spec.objects)
    got = sum(len(m) for m in matched)
    extras = len(det.objects) - got
    found = ", ".join(o.label if hasattr(o, "label") else f"{o.color} {o.shape}" for o in det.objects) or "nothing"
    if got == want and extras == 0:
        if spec.relation is None:
            return 10, f"exactly the requested objects: {found}"
        a, b = matched[0], matched[1]
        ok = all(spec.relation in relations(x.bbox, y.bbox) for x in a for y in b)
        if ok:
            return 10, f"objects and relation '{spec.relation}' as requested"
        return 5, f"right objects but not '{spec.relation}'"
    score = 10.0 * (got / max(want, 1)) / (1 + extras)
    return int(round(score)), f"found {found}; {got} of {want} requested, {extras} extra"


def _near(a: tuple[float, float], b: tuple[float, float], tol: float) -> bool:
    return math.hypot(a[0] - b[0], a[1] - b[1]) <= tol


def _take(objs: list[DetectedObject], used: set[int], pred) -> DetectedObject | None:
    for j, o in enumerate(objs):
        if j not in used and pred(o):
            used.add(j)
            return o
    return None


def score_edit(src: Detection, out: Detection, ins: EditInstruction, canvas: int) -> tuple[list[int], str]:
    tol = 0.1 * canvas
    used: set[int] = set()
    target = None
    if ins.target is not None:
        cands = [o for o in src.objects if ins.target.matches(o.shape, o.color, o.size)]
        if not cands:
            return [0, 0], f"the source has no {ins.target.label} to edit"
        # When several match, prefer the one the output changed (it is missing there unchanged).
        def unchanged(o: DetectedObject) -> bool:
            return any(x.shape == o.shape and x.color == o.color and _near(x.center, o.center, tol)
                       for x in out.objects)
        target = next((o for o in cands if not unchanged(o)), cands[0])

    success = False
    why = ""
    c = ins.category
    if c == "background":
        success = out.background == ins.background
        why = f"background is {out.background}, asked {ins.background}"
    elif c == "recolor":
        hit = _take(out.objects, used, lambda o: o.shape == target.shape and o.color == ins.new.color
                    and _near(o.center, target.center, tol))
        success = hit is not None
        why = f"{target.shape} at the same place is {'now' if hit else 'not'} {ins.new.color}"
    elif c == "replace":
        hit = _take(out.objects, used, lambda o: o.shape == ins.new.shape
                    and (ins.new.color is None or o.color == ins.new.color) and _near(o.center, target.center, tol))
        success, why = hit is not None, f"{'a' if hit else 'no'} {ins.new.label} where the {target.shape} was"
    elif c == "remove":
        gone = not any(o.shape == target.shape and o.color == target.color and _near(o.center, target.center, tol)
                       for o in out.objects)
        success, why = gone, f"the {target.color} {target.shape} is {'gone' if gone else 'still there'}"
    elif c == "add":
        before = sum(ins.new.matches(o.shape, o.color, o.size) for o in src.objects)
        cands = [j for j, o in enumerate(out.objects) if ins.new.matches(o.shape, o.color, o.size)
                 and not any(s.shape == o.shape and s.color == o.color and _near(s.center, o.center, tol)
                             for s in src.objects)]
        success = len(cands) >= ins.new.count and (
            sum(ins.new.matches(o.shape, o.color, o.size) for o in out.objects) >= before + ins.new.count)
        used.update(cands[:ins.new.count])
        why = f"{len(cands)} new {ins.new.label}"
    elif c == "move":
        hit = _take(out.objects, used, lambda o: o.shape == target.shape and o.color == target.color)
        if hit is not None:
            dx, dy = hit.center[0] - target.center[0], hit.center[1] - target.center[1]
            step = {"left": -dx, "right": dx, "up": -dy, "down": dy}[ins.direction]
            success = step > 0.5 * tol
            why = f"moved by ({dx:+.1f}, {dy:+.1f}) px, asked {ins.direction}"
        else:
            why = f"the {target.color} {target.shape} is gone"
    elif c == "resize":
        hit = _take(out.objects, used, lambda o: o.shape == target.shape and o.color == target.color
                    and _near(o.center, target.center, 2 * tol))
        if hit is not None:
            ratio = hit.area / max(target.area, 1)
            success = ratio > 1.3 if ins.direction == "bigger" else ratio < 0.77
            why = f"area x{ratio:.2f}, asked {ins.direction}"
        else:
            why = f"the {target.color} {target.shape} is gone"

    # Preservation: everything the instruction did not touch.
    others = [o for o in src.objects if o is not target]
    kept = 0
    for o in others:
        if _take(out.objects, used, lambda x, o=o: x.shape == o.shape and x.color == o.color
                 and _near(x.center, o.center, tol)) is not None:
            kept += 1
    bg_ok = c == "background" or out.background == src.background
    extras = len(out.objects) - len(used)
    preserved = (kept + bg_ok) / (len(others) + 1) / (1 + max(0, extras))
    scores = [10 if success else 0, int(round(10 * preserved))]
    bg = "kept" if bg_ok else "changed"
    return scores, f"{why}; kept {kept}/{len(others)} other objects, background {bg}, {max(0, extras)} extra"


class ShapesWorldBackend:
    """A `unipic.judges.local_server.JudgeBackend` backed by the exact ShapesWorld detector."""

    name = "shapesworld-detector"

    def __init__(self, detector: ShapesDetector | None = None):
        self.detector = detector or ShapesDetector()

    def _detect(self, image: Image.Image, size: tuple[int, int] | None = None) -> Detection:
        if size is not None and image.size != size:
            image = image.resize(size, Image.NEAREST)
        return self.detector.detect(np.asarray(image.convert("RGB")))

    def t2i_sc(self, image: Image.Image, prompt: str) -> tuple[list[float], str]:
        score, why = score_caption(self._detect(image), parse_caption(prompt))
        return [score], why

    def edit_sc(self, source: Image.Image, edited: Image.Image, instruction: str) -> tuple[list[float], str]:
        src = self._detect(source)
        out = self._detect(edited, source.size)
        scores, why = score_edit(src, out, parse_instruction(instruction), min(source.size))
        return scores, why

    def pq(self, image: Image.Image) -> tuple[list[float], str]:
        det = self._detect(image)
        clean = det.cleanliness
        fit = min((o.match for o in det.objects), default=1.0)
        nat = int(round(10 * clean))
        art = int(round(10 * clean * min(1.0, fit / 0.9)))
        return [nat, art], f"cleanliness {clean:.2f}, worst shape fit {fit:.2f}"

    def rubric(self, source: Image.Image, edited: Image.Image, instruction: str, dimensions: list[str]
               ) -> tuple[list[int], str]:
        (success, preserved), why = self.edit_sc(source, edited, instruction)
        (nat, art), _ = self.pq(edited)
        first = 1 + int(round(4 * success / 10))
        rest = [min(first, 1 + int(round(4 * nat / 10))), min(first, 1 + int(round(4 * preserved / 10)))]
        values = ([first] + rest + [min(first, 1 + int(round(4 * art / 10)))] * max(0, len(dimensions) - 3))
        return values[:len(dimensions)], why

    def vqa(self, image: Image.Image, question: str) -> str:
        """DPG-style yes/no questions about objects: "Is there a red circle?", "Are there three green
        triangles?", "Is the red circle left of the blue square?"."""
        q = re.sub(r"^(is|are)\s+(there\s+)?(the\s+)?", "", question.strip().lower()).rstrip("?").strip()
        q = re.sub(r"\bthe\b", "a", q)
        try:
            spec = parse_caption(q)
        except ValueError:
            return "no"
        det = self._detect(image)
        matched = _assign(spec.objects, det.objects)
        if any(len(m) < p.count for m, p in zip(matched, spec.objects, strict=True)):
            return "no"
        if spec.relation is not None:
            ok = all(spec.relation in relations(x.bbox, y.bbox) for x in matched[0] for y in matched[1])
            return "yes" if ok else "no"
        return "yes"

    def score(self, image: Image.Image, text: str | None, source: Image.Image | None) -> float:
        if source is not None and text:
            (success, preserved), _ = self.edit_sc(source, image, text)
            return (success / 10.0) * (preserved / 10.0)
        if text:
            (sc,), _ = self.t2i_sc(image, text)
            return sc / 10.0
        return float(self._detect(image).cleanliness)
