"""Read ShapesWorld captions and edit instructions back into structure, from their words alone.

This is what lets the local judge answer the same text a VLM judge receives: it gets a prompt and images,
never the generator's structured spec. The parser is vocabulary-driven (colours, shapes, sizes, backgrounds
come from `unipic.data.shapes.world`) and tolerant of template wording ("a photo of", plurals, number
words), so it does not break when caption templates change; a text it cannot read raises `ValueError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from unipic.data.shapes.world import BACKGROUNDS, COLORS, RELATIONS, SHAPES, SIZES

NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_REL_RE = re.compile(r"\b(" + "|".join(re.escape(r) for r in sorted(RELATIONS, key=len, reverse=True)) + r")\b")
_SHAPE_WORDS = {s: s for s in SHAPES} | {s + "s": s for s in SHAPES} | {s + "es": s for s in SHAPES}


@dataclass(frozen=True)
class ObjectPhrase:
    shape: str | None
    color: str | None = None
    size: str | None = None
    count: int = 1

    def matches(self, shape: str, color: str, size: str | None = None) -> bool:
        return ((self.shape is None or self.shape == shape) and (self.color is None or self.color == color)
                and (self.size is None or size is None or self.size == size))

    @property
    def label(self) -> str:
        return " ".join(x for x in (self.size, self.color, self.shape) if x)


@dataclass(frozen=True)
class CaptionSpec:
    objects: list[ObjectPhrase]
    relation: str | None = None  # objects[0] <relation> objects[1]


@dataclass(frozen=True)
class EditInstruction:
    category: str  # recolor | add | remove | replace | move | resize | background
    target: ObjectPhrase | None = None
    new: ObjectPhrase | None = None      # add: the new object; replace: the replacement; recolor: new colour
    direction: str | None = None         # move: left|right|up|down ; resize: bigger|smaller
    background: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def parse_object(text: str) -> ObjectPhrase:
    """'three green triangles' -> ObjectPhrase('triangle', 'green', None, 3)."""
    shape = color = size = None
    count = 1
    for w in _words(text):
        if w in NUMBERS:
            count = NUMBERS[w]
        elif w in COLORS:
            color = w
        elif w in SIZES:
            size = w
        elif w in _SHAPE_WORDS:
            shape = _SHAPE_WORDS[w]
    if shape is None and color is None:
        raise ValueError(f"no shape or colour in {text!r}")
    return ObjectPhrase(shape, color, size, count)


def parse_caption(text: str) -> CaptionSpec:
    """A T2I caption: one or two object phrases, joined by 'and' or by a spatial relation."""
    t = re.sub(r"^\s*(a photo of|an image of|a picture of)\s+", "", text.strip().lower()).rstrip(".")
    m = _REL_RE.search(t)
    if m:
        a, b = t[:m.start()], t[m.end():]
        return CaptionSpec([parse_object(a), parse_object(b)], relation=m.group(1))
    parts = [p for p in re.split(r"\band\b|,", t) if p.strip()]
    return CaptionSpec([parse_object(p) for p in parts])


def _after(text: str, words: tuple[str, ...]) -> str:
    for w in words:
        m = re.search(rf"\b{w}\b", text)
        if m:
            return text[m.end():]
    return text


def parse_instruction(text: str) -> EditInstruction:
    """An edit instruction, by its verb and the vocabulary it mentions."""
    t = text.strip().lower().rstrip(".")
    ws = _words(t)
    if "background" in ws:
        bgs = [w for w in ws if w in BACKGROUNDS]
        if not bgs:
            raise ValueError(f"background edit without a background colour: {text!r}")
        return EditInstruction("background", background=bgs[-1])
    if ws and ws[0] in ("remove", "delete", "erase") or "take away" in t:
        return EditInstruction("remove", target=parse_object(_after(t, ("remove", "delete", "erase", "away"))))
    if ws and ws[0] in ("add", "put", "place", "insert", "draw"):
        return EditInstruction("add", new=parse_object(_after(t, ("add", "put", "place", "insert", "draw"))))
    if ws and ws[0] == "move":
        rest = _after(t, ("move",))
        direction = next((d for d, keys in (("left", ("left",)), ("right", ("right",)),
                                             ("up", ("up", "top", "upward", "upwards")),
                                             ("down", ("down", "bottom", "downward", "downwards")))
                          if any(k in _words(rest) for k in keys)), None)
        if direction is None:
            raise ValueError(f"move without a direction: {text!r}")
        obj = re.split(r"\b(to|towards|toward|left|right|up|down)\b", rest)[0]
        return EditInstruction("move", target=parse_object(obj), direction=direction)
    if any(w in ws for w in ("bigger", "larger", "smaller", "enlarge", "shrink", "resize")):
        bigger = any(w in ws for w in ("bigger", "larger", "enlarge")) or (
            "resize" in ws and next((w for w in reversed(ws) if w in SIZES), "") == "large")
        obj = re.sub(r"\b(make|bigger|larger|smaller|enlarge|shrink|resize|it|to|much|bit)\b", " ", t)
        obj = " ".join(w for w in _words(obj) if w not in SIZES)
        return EditInstruction("resize", target=parse_object(obj), direction="bigger" if bigger else "smaller")
    if ws and ws[0] in ("replace", "swap", "turn", "change", "transform", "make", "color", "colour", "paint",
                        "recolor", "recolour"):
        m = re.search(r"\b(with|into|to|by)\b", t)
        if m:
            first, second = t[:m.start()], t[m.end():]
            src = parse_object(re.sub(r"^\w+\s+", "", first))
            new = parse_object(second)
        else:
            colors = [w for w in ws if w in COLORS]
            if len(colors) < 2:
                raise ValueError(f"cannot read the edit in {text!r}")
            body = " ".join(ws[1:])
            src = parse_object(body.rsplit(colors[-1], 1)[0])
            new = ObjectPhrase(None, colors[-1])
        if new.shape is not None and new.shape != src.shape:
            return EditInstruction("replace", target=src, new=new)
        if new.color is not None:
            return EditInstruction("recolor", target=src, new=ObjectPhrase(None, new.color))
        raise ValueError(f"cannot read the edit in {text!r}")
    raise ValueError(f"unknown edit verb in {text!r}")
