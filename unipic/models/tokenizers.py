"""Tokenizers built in code, no downloads (notes/feas_ml.md §4).

CLIP slots: byte-level BPE with the full 2 x 256 byte vocabulary (so any text round-trips, lower-cased as CLIP
does), plus merges learned on ShapesWorld's words so a caption fits in few tokens. T5 slot: a unigram model
(like T5) learned on the same words; non-ASCII text maps to <unk>, which the T5 slot tolerates. Both are
deterministic for a given corpus and vocabulary size, and save/load with `save_pretrained` / `AutoTokenizer`.
"""

from __future__ import annotations

import itertools
import json
import string
from collections.abc import Iterable

from transformers import CLIPTokenizer, T5Tokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

COLORS = ("red", "green", "blue", "yellow", "orange", "purple", "pink", "brown", "black", "white", "gray", "cyan")
SHAPES = ("circle", "square", "triangle", "rectangle", "ellipse", "star", "hexagon", "diamond")
COUNTS = ("one", "two", "three", "four", "five")
RELATIONS = ("left of", "right of", "above", "below", "next to")
SIZES = ("small", "large", "big", "tiny")


def shapes_corpus() -> list[str]:
    """Captions and edit instructions in the style of ShapesWorld's templates (GenEval / GEdit-Bench twins)."""
    lines: list[str] = []
    for c, s in itertools.product(COLORS, SHAPES):
        lines += [f"a {c} {s}", f"a photo of a {c} {s}", f"a {s} that is {c}"]
        lines += [f"make the {s} {c}", f"add a {c} {s}", f"remove the {c} {s}", f"change the background to {c}"]
        lines += [f"{n} {c} {s}s" for n in COUNTS[1:]]
        lines += [f"make the {c} {s} {z}ger" if z == "big" else f"make the {c} {s} {z}" for z in SIZES]
    for (c1, s1), (c2, s2) in itertools.islice(itertools.product(zip(COLORS, SHAPES), repeat=2), 64):
        lines += [f"a {c1} {s1} and a {c2} {s2}", f"replace the {c1} {s1} with a {c2} {s2}"]
        lines += [f"a {c1} {s1} {r} a {c2} {s2}" for r in RELATIONS]
        lines += [f"move the {c1} {s1} {r} the {c2} {s2}" for r in RELATIONS]
    return lines


def _byte_vocab() -> dict[str, int]:
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    symbols = list(bytes_to_unicode().values())
    for s in symbols:
        vocab.setdefault(s, len(vocab))
    for s in symbols:
        vocab.setdefault(s + "</w>", len(vocab))
    return vocab


def make_clip_tokenizer(
    corpus: Iterable[str] | None = None, vocab_size: int = 700, model_max_length: int = 77
) -> CLIPTokenizer:
    """CLIP BPE tokenizer: bos=<|startoftext|> (0), eos=pad=<|endoftext|> (1).

    Learned merges are unioned with the full byte vocabulary: training alone drops byte symbols missing from the
    corpus (they would become <unk>). Merges must be tuples in transformers v5.
    """
    vocab = _byte_vocab()
    merges: list[tuple[str, str]] = []
    if corpus is not None:
        trained = CLIPTokenizer(vocab=dict(vocab), merges=[]).train_new_from_iterator(
            list(corpus), vocab_size=vocab_size
        )
        model = json.loads(trained.backend_tokenizer.to_str())["model"]
        for token in sorted(model["vocab"], key=model["vocab"].get):
            vocab.setdefault(token, len(vocab))
        merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)


def make_t5_tokenizer(corpus: Iterable[str] | None = None, vocab_size: int = 200, model_max_length: int = 256) -> T5Tokenizer:
    """Unigram tokenizer for the T5 slot (pad=0, eos=1, unk=2), learned on `corpus` (default: ShapesWorld words)."""
    lines = list(corpus) if corpus is not None else shapes_corpus()
    return T5Tokenizer(extra_ids=0, model_max_length=model_max_length).train_new_from_iterator(
        lines, vocab_size=vocab_size, initial_alphabet=list(string.printable.strip())
    )
