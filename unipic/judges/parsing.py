"""Strict parsers for judge answers. They return scores or raise `ParseFailure`; they never guess."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence


class ParseFailure(ValueError):
    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind  # "unparseable" | "out_of_range"
        self.detail = detail


_FENCE = re.compile(r"^```(?:json|JSON)?\s*(.*?)\s*```$", re.S)


def _json_object(text: str) -> dict:
    s = text.strip()
    m = _FENCE.match(s)
    if m:
        s = m.group(1).strip()
    start, end = s.find("{"), s.rfind("}")
    if start < 0 or end <= start:
        raise ParseFailure("unparseable", "no JSON object in the answer")
    try:
        obj = json.loads(s[start:end + 1])
    except json.JSONDecodeError as exc:
        raise ParseFailure("unparseable", f"invalid JSON: {exc.msg}") from None
    if not isinstance(obj, dict):
        raise ParseFailure("unparseable", "the JSON answer is not an object")
    return obj


def _number(value: object, lo: float, hi: float, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", value):
            value = float(value)
        else:
            raise ParseFailure("unparseable", f"{where} is not a number: {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < lo or v > hi:
        raise ParseFailure("out_of_range", f"{where}={v} outside [{lo}, {hi}]")
    return v


def parse_viescore(text: str, n_scores: int, lo: float = 0.0, hi: float = 10.0) -> tuple[list[float], str]:
    """Parse VIEScore's `{"score": [...], "reasoning": "..."}`: exactly `n_scores` numbers in [lo, hi]."""
    obj = _json_object(text)
    keys = {k.lower(): k for k in obj}
    if "score" not in keys:
        raise ParseFailure("unparseable", f"no 'score' field (fields: {sorted(obj)})")
    scores = obj[keys["score"]]
    if not isinstance(scores, list):
        scores = [scores]
    if len(scores) != n_scores:
        raise ParseFailure("unparseable", f"expected {n_scores} scores, got {len(scores)}")
    values = [_number(v, lo, hi, f"score[{i}]") for i, v in enumerate(scores)]
    reasoning = obj.get(keys.get("reasoning", "reasoning"), "")
    return values, reasoning if isinstance(reasoning, str) else json.dumps(reasoning)


def parse_rubric(text: str, dimensions: Sequence[str], lo: int = 1, hi: int = 5) -> tuple[list[float], str]:
    """Parse ImgEdit's reply `Brief reasoning: ...` then one `<Dimension>: n` line per dimension.

    Every named dimension must appear exactly once with an integer in [lo, hi]. ImgEdit's own step-1 script
    averages whatever `: <digits>` lines it finds, so a reply missing a dimension shifts the mean; we exclude it.
    """
    found: dict[str, float] = {}
    reasoning = ""
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().strip("*-# ").lower()
        if key.startswith("brief reasoning"):
            reasoning = value.strip()
            continue
        for dim in dimensions:
            if key == dim.lower():
                m = re.fullmatch(r"\s*\**\s*(-?\d+(?:\.\d+)?)\s*\**\s*(?:/\s*\d+)?\s*", value)
                if not m:
                    raise ParseFailure("unparseable", f"'{dim}' has no number: {value.strip()!r}")
                if dim in found:
                    raise ParseFailure("unparseable", f"'{dim}' given twice")
                v = float(m.group(1))
                if v != int(v) or v < lo or v > hi:
                    raise ParseFailure("out_of_range", f"'{dim}'={m.group(1)} is not an integer in [{lo}, {hi}]")
                found[dim] = v
    missing = [d for d in dimensions if d not in found]
    if missing:
        raise ParseFailure("unparseable", f"missing dimension(s): {', '.join(missing)}")
    return [found[d] for d in dimensions], reasoning
