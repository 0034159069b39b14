"""Decode + validation: every image must be non-empty, fully decodable, and in an accepted mode.

PIL opens lazily; `load()` is what reads the pixel data, so truncated files fail there. Pillow's
LOAD_TRUNCATED_IMAGES stays False: a half image must be rejected, not padded with grey.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from unipic.config.curation import CurationConfig
from unipic.data.curation.base import Filter
from unipic.data.curation.sample import Sample
from unipic.data.curation.signals import view_factor
from unipic.data.curation.stacks import StackPool, stack_batch


def decode_image(data: bytes | None, allowed_modes: list[str],
                 max_bytes: int) -> tuple[np.ndarray | None, str | None]:
    """(HxWxC uint8 array, None) or (None, reason)."""
    im, why = open_image(data, allowed_modes, max_bytes)
    return (None, why) if im is None else (np.asarray(im), None)


def open_image(data: bytes | None, allowed_modes: list[str],
               max_bytes: int) -> tuple[Image.Image | None, str | None]:
    """(fully loaded PIL image, None) or (None, reason)."""
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
    return im, None


def _decode_into(sample: Sample, which: str, im: Image.Image) -> np.ndarray:
    """The pixels; an RGB image larger than the analysis scale also gets its analysis view here, reduced
    from the decoded PIL image (the same pixels `Sample.analysis` would reduce, without a copy back)."""
    factor = view_factor(im.size)
    if im.mode == "RGB" and factor > 1:
        sample.views[which] = np.asarray(im.reduce(factor))
    return np.asarray(im)


class DecodeFilter(Filter):
    """Rejects missing, zero-size, oversized, undecodable, truncated and wrong-mode images; keeps pixels."""

    name = "decode"

    def __init__(self, cfg: CurationConfig) -> None:
        super().__init__(cfg)
        self._pool = StackPool()

    def check(self, sample: Sample) -> str | None:
        t = self.thresholds(sample)
        sample.slots = {}
        im, why = open_image(sample.image, t.allowed_modes, t.max_bytes)
        if im is None:
            sample.pixels = None
            return why if not sample.is_edit else f"source_{why}"
        sample.pixels = _decode_into(sample, "image", im)
        if sample.is_edit:
            target, why = open_image(sample.target, t.allowed_modes, t.max_bytes)
            if target is None:
                sample.target_pixels = None
                return f"target_{why}"
            sample.target_pixels = _decode_into(sample, "target", target)
        return None

    def check_batch(self, samples: list[Sample]) -> list[str | None]:
        """`check` per sample, then the decoded views go into one stack per shape for the later kernels."""
        whys = [self.check(s) for s in samples]
        ok = [s for s, why in zip(samples, whys, strict=True) if why is None]
        stack_batch(ok, "image", self._pool)
        stack_batch([s for s in ok if s.is_edit], "target", self._pool)
        return whys
