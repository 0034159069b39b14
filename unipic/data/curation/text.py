"""Caption / instruction checks: present, real text, within the text encoder's budget."""

from __future__ import annotations

import math
import unicodedata

from unipic.data.curation.base import Filter
from unipic.data.curation.sample import Sample


def text_reason(text: object, min_chars: int, max_chars: int, max_words: int,
                min_alpha_ratio: float) -> str | None:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return "missing"
    if not isinstance(text, str):
        return "non_text"
    stripped = text.strip()
    if len(stripped) < max(min_chars, 1):
        return "empty"
    if len(stripped) > max_chars:
        return "too_long"
    if len(stripped.split()) > max_words:
        return "too_many_words"
    if not stripped.isprintable() and any(unicodedata.category(c) == "Cc" and c not in "\t\n" for c in stripped):
        return "control_chars"
    if _alpha_count(stripped) / len("".join(stripped.split())) < min_alpha_ratio:
        return "non_text"
    return None


_ASCII_LETTERS = str.maketrans("", "", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _alpha_count(text: str) -> int:
    """How many characters are letters (`str.isalpha`); for ASCII text by one C-level deletion instead of a
    Python loop (a printable string has no control characters, so the per-character check above is skipped
    the same way: every control character is unprintable)."""
    if text.isascii():
        return len(text) - len(text.translate(_ASCII_LETTERS))
    return sum(c.isalpha() for c in text)


class TextFilter(Filter):
    name = "text"

    def check(self, sample: Sample) -> str | None:
        t = self.thresholds(sample)
        why = text_reason(sample.text, t.text_min_chars, t.text_max_chars, t.text_max_words,
                          t.text_min_alpha_ratio)
        if why is None:
            sample.text = sample.text.strip()
        return why
