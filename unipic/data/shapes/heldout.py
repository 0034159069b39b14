"""The held-out split of compositions: a fixed, documented rule, so the same compositions are unseen by every
training run and reserved for evaluation.

Two levels, both deterministic hashes (sha256, no RNG, independent of seed, n and sharding):

1. Held-out colour-shape pairs. For each shape in use, the colour in use whose
   sha256("unipic-shapes/pair/{shape}/{color}") is smallest is held out (one colour per shape). A held-out pair
   never appears in any `train` image, as an object of a prompt, a distractor, an edit source or an edit target.
   This tests attribute binding: "a purple triangle" is only ever seen in `heldout`.
2. Held-out compositions. Every multi-part composition has a canonical key; it is held out when the first
   8 hex digits of sha256("unipic-shapes/comp/{key}") / 2**32 < heldout_fraction. Keys:
   - pair of objects (two_object, color_attr): "pair:" + the two "color shape" items sorted;
   - relation (position): "rel:A|left of|B" with "right of"/"below" rewritten as "left of"/"above" by swapping
     A and B, so "A right of B" and "B left of A" are one composition;
   - count: "count:N:color shape";
   - edit: "edit:{category}:{color shape of the target}:{parameter}".

A sample is `heldout` when any of its objects (requested or rendered, before or after an edit) is a held-out pair,
or its composition key is held out. Train generation rejects heldout samples and heldout generation rejects
train ones, so the two splits never share a composition.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from functools import lru_cache

Split = str
TRAIN = "train"
HELDOUT = "heldout"


def _h(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


@lru_cache(maxsize=256)
def heldout_pairs(colors: tuple[str, ...], shapes: tuple[str, ...]) -> frozenset[tuple[str, str]]:
    """The held-out (color, shape) pairs for a palette in use: one colour per shape."""
    if len(colors) < 2:
        return frozenset()
    out = set()
    for shape in shapes:
        color = min(colors, key=lambda c: _h(f"unipic-shapes/pair/{shape}/{c}"))
        out.add((color, shape))
    return frozenset(out)


def composition_heldout(key: str | None, fraction: float) -> bool:
    """Whether a composition key falls in the held-out share."""
    if key is None or fraction <= 0:
        return False
    return _h(f"unipic-shapes/comp/{key}") / float(2**32) < fraction


def pair_key(items: Sequence[str]) -> str:
    return "pair:" + "|".join(sorted(items))


def relation_key(subject: str, relation: str, reference: str) -> str:
    if relation == "right of":
        subject, relation, reference = reference, "left of", subject
    elif relation == "below":
        subject, relation, reference = reference, "above", subject
    return f"rel:{subject}|{relation}|{reference}"


def count_key(n: int, item: str) -> str:
    return f"count:{n}:{item}"


def edit_key(category: str, item: str | None, param: str) -> str:
    return f"edit:{category}:{item or '-'}:{param}"


def split_of(objects: Iterable[tuple[str, str]], key: str | None, *, colors: Sequence[str],
             shapes: Sequence[str], fraction: float) -> Split:
    """The split of a sample given all (color, shape) pairs it shows or asks for and its composition key."""
    pairs = heldout_pairs(tuple(colors), tuple(shapes))
    if any(p in pairs for p in objects) or composition_heldout(key, fraction):
        return HELDOUT
    return TRAIN
