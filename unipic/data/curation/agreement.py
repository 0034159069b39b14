"""T2I agreement (`score_t2i_detection(det, spec).score`) from the detector's object arrays, a batch at a time.

Captions repeat heavily (ShapesWorld has a few hundred distinct ones), so each distinct spec is validated and
turned into counts once (`SpecCache`). A sample whose detected objects can be paired one to one with the
requested ones (same multiset, colour-free requests matching any colour) scores 1.0 without an assignment,
as the full score does; a `position` sample in that case reads the relation off the only object that can fill
each of its two slots. Every other sample (a missing, extra or wrong object, or a slot several objects could
fill, where the assignment's tie-breaking decides) goes through the same pairing, assignment and relation check
as `score_t2i_detection`, in the same order, so the same float.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from unipic.data.shapes.detect import _COLOR_NAMES
from unipic.data.shapes.detect_stacked import SHAPE_COL, StackedObjects, object_boxes
from unipic.data.shapes.t2i import T2ISpec
from unipic.data.shapes.world import SHAPES, relations

_N_SHAPES, _N_COLORS = len(SHAPES), len(_COLOR_NAMES)
_SHAPE_INDEX = {s: i for i, s in enumerate(SHAPES)}
_COLOR_INDEX = {c: i for i, c in enumerate(_COLOR_NAMES)}
_ANY_COLOR = -1


@dataclass(frozen=True)
class ParsedSpec:
    """A validated T2I spec as counts over (shape, colour) keys (key = shape * colours + colour)."""

    spec: T2ISpec
    n_req: int
    need: np.ndarray  # requested objects of a given colour, per key
    per_shape: np.ndarray  # requested objects per shape, any colour included
    matchable: bool  # every request names a shape (and colour) the detector can report
    subject: tuple[int, int] | None  # the relation's subject as (shape, colour or _ANY_COLOR), when asked once
    reference: tuple[int, int] | None


def parse_spec(spec: dict) -> ParsedSpec:
    """Validate `spec` as `T2ISpec` (raising as `model_validate` does) and count its requests."""
    t2i = T2ISpec.model_validate(spec)
    need = np.zeros(_N_SHAPES * _N_COLORS, dtype=np.int64)
    per_shape = np.zeros(_N_SHAPES, dtype=np.int64)
    matchable = True
    keys: list[tuple[int, int] | None] = []
    for r in t2i.objects:
        s = _SHAPE_INDEX.get(r.shape)
        c = _ANY_COLOR if r.color is None else _COLOR_INDEX.get(r.color)
        if s is None or c is None:
            matchable = matchable and r.count <= 0
            keys.append(None)
            continue
        if r.count > 0:
            per_shape[s] += r.count
            if c != _ANY_COLOR:
                need[s * _N_COLORS + c] += r.count
        keys.append((s, c) if r.count == 1 else None)
    rel = t2i.relation
    subject = keys[rel.subject] if rel is not None and 0 <= rel.subject < len(keys) else None
    reference = keys[rel.reference] if rel is not None and 0 <= rel.reference < len(keys) else None
    n_req = sum(max(r.count, 0) for r in t2i.objects)
    return ParsedSpec(t2i, n_req, need, per_shape, matchable and all(r.count >= 0 for r in t2i.objects),
                      subject, reference)


class SpecCache:
    """`parse_spec` once per distinct spec: keyed by caption, a hit only when a stored spec is equal. A caption
    keeps up to `per_caption` specs: ShapesWorld reuses a caption for specs that differ (the same two objects
    under `two_object` and `color_attr`), and one entry per caption re-validated those on every alternation."""

    def __init__(self, max_entries: int = 4096, per_caption: int = 8) -> None:
        self.max_entries = max_entries
        self.per_caption = per_caption
        self._by_caption: dict[str, list[tuple[dict, ParsedSpec]]] = {}
        self._n = 0

    def get(self, spec: dict) -> ParsedSpec:
        caption = spec.get("caption")
        if not isinstance(caption, str):
            return parse_spec(spec)
        hits = self._by_caption.get(caption)
        if hits is not None:
            for stored, parsed in hits:
                if stored == spec:
                    return parsed
        parsed = parse_spec(spec)
        if self._n >= self.max_entries:
            self._by_caption.clear()
            self._n = 0
            hits = None
        if hits is None:
            hits = self._by_caption[caption] = []
        if len(hits) >= self.per_caption:
            hits.pop(0)
            self._n -= 1
        hits.append((copy.deepcopy(spec), parsed))
        self._n += 1
        return parsed


def batch_agreements(objs: StackedObjects, specs: list[dict], cache: SpecCache) -> list[float | None]:
    """The T2I agreement of image i of `objs` with `specs[i]` (None where the spec does not validate)."""
    n = len(specs)
    parsed: list[ParsedSpec | None] = []
    for spec in specs:
        try:
            parsed.append(cache.get(spec))
        except (ValueError, KeyError, TypeError):
            parsed.append(None)
    perfect, hist = _perfect(objs, parsed)
    out: list[float | None] = [None] * n
    starts = objs.starts.tolist()
    table: list[list[int]] | None = None  # the object rows as lists, made once where a relation is read
    for i, p in enumerate(parsed):
        if p is None:
            continue
        if perfect[i] and p.spec.relation is None:
            out[i] = 1.0
            continue
        a, b = starts[i], starts[i + 1]
        if perfect[i] and _unique(p.subject, hist[i]) and _unique(p.reference, hist[i]):
            if table is None:
                table = objs.table.tolist()
            out[i] = _relation_score(p, table[a:b])
            continue
        try:
            shapes = [SHAPES[k] for k in objs.table[a:b, SHAPE_COL].tolist()]
            colors = [_COLOR_NAMES[k - 1] for k in objs.table[a:b, 1].tolist()]
            out[i] = float(agreement(p.spec, shapes, colors, object_boxes(objs.table[a:b])))
        except (ValueError, KeyError, TypeError):
            out[i] = None
    return out


def _perfect(objs: StackedObjects, parsed: list[ParsedSpec | None]) -> tuple[list[bool], np.ndarray]:
    """Per image, whether its objects pair one to one with the requests (every slot gets a full match), and
    its (shape, colour) histogram."""
    n, k = len(parsed), _N_SHAPES * _N_COLORS
    t = objs.table
    keys = t[:, 0] * k + t[:, SHAPE_COL] * _N_COLORS + (t[:, 1] - 1)
    hist = np.bincount(keys, minlength=n * k).reshape(n, k)
    ok = [p is not None and p.matchable and p.n_req > 0 for p in parsed]
    idx = [i for i, good in enumerate(ok) if good]
    perfect = [False] * n
    if idx:
        need = np.stack([parsed[i].need for i in idx])  # type: ignore[union-attr]
        per_shape = np.stack([parsed[i].per_shape for i in idx])  # type: ignore[union-attr]
        n_req = np.array([parsed[i].n_req for i in idx])  # type: ignore[union-attr]
        h = hist[idx]
        good = ((np.diff(objs.starts)[idx] == n_req) & (h >= need).all(axis=1)
                & (h.reshape(len(idx), _N_SHAPES, _N_COLORS).sum(axis=2) == per_shape).all(axis=1))
        for i, g in zip(idx, good.tolist(), strict=True):
            perfect[i] = g
    return perfect, hist


def _unique(key: tuple[int, int] | None, hist: np.ndarray) -> bool:
    """Exactly one detected object can fill the (single) slot of this request."""
    if key is None:
        return False
    s, c = key
    if c == _ANY_COLOR:
        return int(hist[s * _N_COLORS:(s + 1) * _N_COLORS].sum()) == 1
    return int(hist[s * _N_COLORS + c]) == 1


def _find(rows: list[list[int]], key: tuple[int, int]) -> tuple[int, int, int, int]:
    s, c = key
    for row in rows:
        if row[SHAPE_COL] == s and (c == _ANY_COLOR or row[1] - 1 == c):
            return object_boxes([row])[0]
    raise AssertionError("a unique object was counted but not found")


def _relation_score(p: ParsedSpec, rows: list[list[int]]) -> float:
    """`agreement` when every slot is fully matched and the relation's two slots each have one candidate
    (`rows`: the image's object-table rows)."""
    rel = p.spec.relation
    assert rel is not None and p.subject is not None and p.reference is not None
    ok = rel.relation in relations(_find(rows, p.subject), _find(rows, p.reference))
    object_score = 2.0 * float(p.n_req) / (p.n_req + p.n_req)
    return 1.0 if ok else float(0.5 * object_score + 0.5 * float(ok))


def agreement(t2i: T2ISpec, shapes: list[str], colors: list[str],
              boxes: list[tuple[int, int, int, int]]) -> float:
    """`score_t2i_detection(...).score` of detected objects (their shapes, colours and boxes, in `detect`'s
    order): the same slots, pairing, assignment and relation check in the same order, so the same float,
    without the diagnostics curation does not keep."""
    from scipy.optimize import linear_sum_assignment

    slots = [(i, r.shape, r.color) for i, r in enumerate(t2i.objects) for _ in range(r.count)]
    n_req, n_det = len(slots), len(shapes)
    pair = np.array([[(1.0 if s == shape else 0.0) if color is None
                      else 0.5 * (s == shape) + 0.5 * (c == color) for s, c in zip(shapes, colors, strict=True)]
                     for _, shape, color in slots], dtype=np.float64).reshape(n_req, n_det)
    rows, cols = linear_sum_assignment(-pair) if n_req and n_det else (np.array([], int), np.array([], int))
    got = pair[rows, cols]
    object_score = 2.0 * float(got.sum()) / (n_req + n_det) if (n_req + n_det) else 1.0
    exact = n_req == n_det and bool(np.all(got == 1.0)) and len(rows) == n_req
    if t2i.relation is None:
        return 1.0 if exact else float(object_score)
    assigned = {slots[a][0]: b for a, b in zip(rows, cols, strict=True) if pair[a, b] == 1.0}
    subj, ref = assigned.get(t2i.relation.subject), assigned.get(t2i.relation.reference)
    relation_ok = bool(subj is not None and ref is not None
                       and t2i.relation.relation in relations(boxes[subj], boxes[ref]))
    return 1.0 if exact and relation_ok else float(0.5 * object_score + 0.5 * float(relation_ok))
