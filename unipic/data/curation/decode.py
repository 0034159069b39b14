"""Decode + validation: every image must be non-empty, fully decodable, and in an accepted mode.

PIL opens lazily; `load()` is what reads the pixel data, so truncated files fail there. Pillow's
LOAD_TRUNCATED_IMAGES stays False: a half image must be rejected, not padded with grey.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from unipic.data.curation.base import Filter
from unipic.data.curation.sample import Sample


def decode_image(data: bytes | None, allowed_modes: list[str],
                 max_bytes: int) -> tuple[np.ndarray | None, str | None]:
    """(HxWxC uint8 array, None) or (None, reason)."""
    if data is None:
        return None, "missing"
    if len(data) == 0:
        return None, "zero_size"
    if len(data) > max_bytes:
        return None, "too_many_bytes"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            im.load()
    except UnidentifiedImageError:
        return None, "undecodable"
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as exc:
        msg = str(exc).lower()
        return None, "truncated" if ("truncated" in msg or "broken" in msg or "eof" in msg) else "undecodable"
    if im.mode not in allowed_modes:
        return None, f"wrong_mode_{im.mode}"
    return np.asarray(im), None


class DecodeFilter(Filter):
    """Rejects missing, zero-size, oversized, undecodable, truncated and wrong-mode images; keeps pixels."""

    name = "decode"

    def check(self, sample: Sample) -> str | None:
        t = self.thresholds(sample)
        sample.pixels, why = decode_image(sample.image, t.allowed_modes, t.max_bytes)
        if why:
            return why if not sample.is_edit else f"source_{why}"
        if sample.is_edit:
            sample.target_pixels, why = decode_image(sample.target, t.allowed_modes, t.max_bytes)
            if why:
                return f"target_{why}"
        return None
