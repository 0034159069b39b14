"""Progress bars for long work. tqdm writes to stderr, so KFP pod logs and CI keep a readable trail."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it") -> Iterator[T]:
    disable = os.environ.get("UNIPIC_NO_PROGRESS") == "1"
    yield from tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True,
                    mininterval=1.0)


def progress_bar(*, total: int | None, desc: str = "", unit: str = "it") -> tqdm:
    disable = os.environ.get("UNIPIC_NO_PROGRESS") == "1"
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True, mininterval=1.0)
