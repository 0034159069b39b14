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
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n" for c in stripped):
        return "control_chars"
    visible = [c for c in stripped if not c.isspace()]
    if sum(c.isalpha() for c in visible) / len(visible) < min_alpha_ratio:
        return "non_text"
    return None


class TextFilter(Filter):
    name = "text"

    def check(self, sample: Sample) -> str | None:
        t = self.thresholds(sample)
        why = text_reason(sample.text, t.text_min_chars, t.text_max_chars, t.text_max_words,
                          t.text_min_alpha_ratio)
        if why is None:
            sample.text = sample.text.strip()
        return why
