"""The unit that flows through curation: one T2I sample or one edit triplet, raw bytes first.

Sources fill the raw fields; filters decode lazily and attach signals. A source that finds a broken row
(missing file, missing caption, bad JSON) still yields a `Sample` carrying a `defect`, so the row is
counted and reported as a rejection instead of vanishing or crashing the stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Sample:
    sample_id: str
    kind: str  # "t2i" | "edit"
    task: str
    text: Any  # caption (t2i) or instruction (edit); Any because bad sources hand over NaN, None, numbers
    image: bytes | None  # t2i image, or the edit's source image (the "primary" image)
    target: bytes | None = None  # edit target image
    meta: dict[str, Any] = field(default_factory=dict)  # ground truth ({key}.json)
    split: str = "train"
    origin: str = ""  # where the row came from, for the rejection log
    defect: str | None = None  # set by a source for a row it could not read properly
    pixels: np.ndarray | None = None  # HxWx3 uint8, set by the decode filter
    target_pixels: np.ndarray | None = None
    signals: dict[str, float] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    views: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    # which view -> (batch stack, row) when the view lives in a batch stack (`unipic.data.curation.stacks`)
    slots: dict[str, tuple[np.ndarray, int]] = field(default_factory=dict, repr=False)

    @property
    def is_edit(self) -> bool:
        return self.kind == "edit"

    def analysis(self, which: str = "image") -> np.ndarray:
        """The decoded image (or "target") at the analysis scale, reduced once and shared by filters."""
        from unipic.data.curation.signals import analysis_view

        view = self.views.get(which)
        if view is None:
            pixels = self.pixels if which == "image" else self.target_pixels
            assert pixels is not None, f"{which} is not decoded yet"
            view = self.views[which] = analysis_view(pixels)
        return view

    def release_pixels(self) -> None:
        """Drop decoded arrays once a sample is written, so streaming keeps memory flat."""
        self.pixels = None
        self.target_pixels = None
        self.views.clear()
        self.slots.clear()
