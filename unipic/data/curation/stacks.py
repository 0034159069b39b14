"""Batch stacks: one (N, H, W, 3) uint8 array per batch and image shape, holding the batch's analysis views.

The decode filter writes each batch's same-shape views into one stack (`stack_batch`) and records each sample's
row (`Sample.slots`), so the compiled kernels of the later filters (signals, detector, pHash) read a whole batch
in one call instead of paying one call per image. `gather` hands a filter its samples' views as stacks and rows;
views outside a stack (a sample decoded on its own, a test's hand-made sample) are stacked there (a copy), and
views no kernel reads (greyscale, float) come back separately for the per-image path.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from unipic.data.curation.sample import Sample


@dataclass
class StackGroup:
    """Samples whose views are `stack[rows]`; `positions` are their indices in the list `gather` was given."""

    stack: np.ndarray
    rows: np.ndarray
    positions: list[int]


def stackable(view: np.ndarray) -> bool:
    return view.ndim == 3 and view.shape[2] == 3 and view.dtype == np.uint8


class StackPool:
    """Reusable stack buffers. A fresh stack per batch would cost more than filling it (its pages are faulted in
    on first write, about 1 us per 4 kB page on a VM); a buffer is handed out again only once nothing but the
    pool refers to it (every sample holding a view into it has released its pixels), so nothing is overwritten
    while in use."""

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        self._free: dict[tuple[int, ...], list[np.ndarray]] = {}

    def take(self, n: int, shape: tuple[int, ...]) -> np.ndarray:
        """An (n, *shape) uint8 array that no one else holds."""
        bufs = self._free.setdefault(shape, [])
        for buf in bufs:
            if len(buf) >= n and sys.getrefcount(buf) <= _POOL_REFS:
                return buf[:n]
        buf = np.empty((max(n, 64), *shape), dtype=np.uint8)
        if len(bufs) < self.keep:
            bufs.append(buf)
        return buf[:n]


# References to a free pooled buffer seen by `sys.getrefcount` inside `take`: the pool's list, the loop
# variable, and the call's own argument.
_POOL_REFS = 3


def stack_batch(samples: list[Sample], which: str, pool: StackPool | None = None) -> None:
    """Move the decoded samples' `which` views ("image" or "target") into one stack per shape; the sample keeps
    views into it (same pixels), and its full-size pixels too where they are the view (no reduction)."""
    by_shape: dict[tuple[int, ...], list[Sample]] = {}
    for s in samples:
        pixels = s.pixels if which == "image" else s.target_pixels
        if pixels is None:
            continue
        view = s.analysis(which)
        if stackable(view):
            by_shape.setdefault(view.shape, []).append(s)
    for group in by_shape.values():
        if len(group) < 2:
            continue
        stack = (pool or StackPool()).take(len(group), group[0].views[which].shape)
        np.stack([s.views[which] for s in group], out=stack)
        for row, s in enumerate(group):
            view = stack[row]
            if s.views[which] is (s.pixels if which == "image" else s.target_pixels):
                if which == "image":
                    s.pixels = view
                else:
                    s.target_pixels = view
            s.views[which] = view
            s.slots[which] = (stack, row)


def gather(samples: list[Sample], which: str) -> tuple[list[StackGroup], list[int]]:
    """The samples' `which` analysis views as stack groups, and the positions of views no kernel reads."""
    groups: dict[int, StackGroup] = {}
    loose: dict[tuple[int, ...], list[int]] = {}
    other: list[int] = []
    for pos, s in enumerate(samples):
        slot = s.slots.get(which)
        if slot is not None:
            g = groups.get(id(slot[0]))
            if g is None:
                g = groups[id(slot[0])] = StackGroup(slot[0], [], [])  # type: ignore[arg-type]
            g.rows.append(slot[1])  # type: ignore[union-attr]
            g.positions.append(pos)
            continue
        view = s.analysis(which)
        if stackable(view):
            loose.setdefault(view.shape, []).append(pos)
        else:
            other.append(pos)
    out = [StackGroup(g.stack, np.asarray(g.rows, dtype=np.int64), g.positions) for g in groups.values()]
    for positions in loose.values():
        stack = np.stack([samples[p].analysis(which) for p in positions])
        out.append(StackGroup(stack, np.arange(len(positions), dtype=np.int64), positions))
    return out, other
