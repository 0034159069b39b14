"""Tokenizers built in code, no downloads (notes/feas_ml.md §4).

CLIP slots: byte-level BPE with the full 2 x 256 byte vocabulary (so any text round-trips, lower-cased as CLIP
does), plus merges learned (deterministically) on ShapesWorld's words so a caption fits in few tokens. T5
slot: a unigram model (like T5) over the same words; non-ASCII text maps to <unk>, which the T5 slot
tolerates. Both are deterministic for a given corpus and vocabulary size, and save/load with `save_pretrained`
/ `AutoTokenizer`.
"""

from __future__ import annotations

import itertools
import math
import re
import string
from collections import Counter
from collections.abc import Iterable

from transformers import CLIPTokenizer, T5Tokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

COLORS = (
    "red",
    "green",
    "blue",
    "yellow",
    "orange",
    "purple",
    "pink",
    "brown",
    "black",
    "white",
    "gray",
    "cyan",
)
SHAPES = ("circle", "square", "triangle", "rectangle", "ellipse", "star", "hexagon", "diamond")
COUNTS = ("one", "two", "three", "four", "five")
RELATIONS = ("left of", "right of", "above", "below", "next to")
SIZES = ("small", "large", "big", "tiny")
DIRECTIONS = ("up", "down", "left", "right")
_WORD = re.compile(r"[a-z]+|[0-9]|[^\sa-z0-9]+")  # CLIP's pre-tokenizer, restricted to what captions contain


def shapes_corpus() -> list[str]:
    """Captions and edit instructions in the style of ShapesWorld's templates (GenEval/GEdit twins)."""
    lines: list[str] = []
    for c, s in itertools.product(COLORS, SHAPES):
        article = "an" if c[0] in "aeiou" else "a"
        lines += [f"{article} {c} {s}", f"a photo of {article} {c} {s}", f"a {s} that is {c}"]
        lines += [f"move the {c} {s} {d}" for d in DIRECTIONS]
        lines += [f"make the {c} {s} {z}" for z in ("smaller", "larger", "bigger")]
        lines += [
            f"make the {s} {c}",
            f"add a {c} {s}",
            f"remove the {c} {s}",
            f"change the background to {c}",
        ]
        lines += [f"{n} {c} {s}s" for n in COUNTS[1:]]
        lines += [f"make the {c} {s} {z}ger" if z == "big" else f"make the {c} {s} {z}" for z in SIZES]
    for (c1, s1), (c2, s2) in itertools.islice(
        itertools.product(zip(COLORS, SHAPES, strict=False), repeat=2), 64
    ):
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


def learn_bpe_merges(corpus: Iterable[str], num_merges: int) -> list[tuple[str, str]]:
    """CLIP-style BPE merges (byte symbols, "</w>" on the last symbol of a word), most frequent pair first.

    Written out rather than using `tokenizers`' trainer because that one breaks ties between equally frequent
    pairs in hash order, so the same corpus could give different merges; here ties go to the smaller pair.
    """
    byte_map = bytes_to_unicode()
    words: Counter[tuple[str, ...]] = Counter()
    for line in corpus:
        for word in _WORD.findall(line.lower()):
            symbols = [byte_map[b] for b in word.encode("utf-8")]
            symbols[-1] += "</w>"
            words[tuple(symbols)] += 1
    merges: list[tuple[str, str]] = []
    while len(merges) < num_merges:
        pairs: Counter[tuple[str, str]] = Counter()
        for word, n in words.items():
            for pair in zip(word, word[1:], strict=False):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < 2:
            break
        merges.append(best)
        merged: Counter[tuple[str, ...]] = Counter()
        for word, n in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += n
        words = merged
    return merges


def make_clip_tokenizer(
    corpus: Iterable[str] | None = None, vocab_size: int = 700, model_max_length: int = 77
) -> CLIPTokenizer:
    """CLIP BPE tokenizer: bos=<|startoftext|> (0), eos=pad=<|endoftext|> (1).

    The vocabulary is the full byte vocabulary (so nothing is ever <unk>) plus one token per learned merge, up
    to `vocab_size`. Merges must be tuples in transformers v5.
    """
    vocab = _byte_vocab()
    merges: list[tuple[str, str]] = []
    if corpus is not None:
        merges = learn_bpe_merges(corpus, max(0, vocab_size - len(vocab)))
        for a, b in merges:
            vocab.setdefault(a + b, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)


def make_t5_tokenizer(
    corpus: Iterable[str] | None = None, vocab_size: int = 200, model_max_length: int = 256
) -> T5Tokenizer:
    """Unigram tokenizer for the T5 slot (pad=0, eos=1, unk=2): whole corpus words as pieces, scored by their
    log frequency, over a fallback of single printable characters (so unseen ASCII words still tokenize).

    Built directly rather than with the unigram trainer, whose EM gives slightly different scores and ids from
    run to run; here the same corpus always gives the same ids.
    """
    lines = list(corpus) if corpus is not None else shapes_corpus()
    counts = Counter(w for line in lines for w in line.split())
    chars = sorted(set(string.printable.strip()))
    budget = max(0, vocab_size - 4 - len(chars))
    total = sum(counts.values()) or 1
    words = sorted(counts, key=lambda w: (-counts[w], w))[:budget]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [("\u2581" + w, math.log(counts[w] / total)) for w in words]
    vocab += [(c, -20.0) for c in chars]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=model_max_length)
