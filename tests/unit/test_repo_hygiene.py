"""The tracked tree holds no data, weights or outsized figures (docs/DEVELOPING.md, "What goes into git")."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURE_DIRS = ("benchmarks/results/", "docs/images/")
FIXTURE_DIRS = ("data/benchmarks/",)
FIGURE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg"}
MAX_FILE = 128 * 1024
MAX_FIGURES = 2 * 1024 * 1024


def tracked() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [Path(p) for p in out.decode().split("\0") if p and (ROOT / p).is_file()]


def is_binary(path: Path) -> bool:
    return b"\0" in (ROOT / path).read_bytes()[:8192]


def test_binaries_are_figures_or_benchmark_fixtures():
    misplaced = [
        str(p) for p in tracked()
        if is_binary(p)
        and not (p.suffix in FIGURE_SUFFIXES and str(p).startswith(FIGURE_DIRS))
        and not str(p).startswith(FIXTURE_DIRS)
    ]
    assert not misplaced, f"binary files outside figures and fixtures (move them to the object store / DVC): {misplaced}"


def test_no_tracked_file_is_large_and_figures_stay_small():
    files = tracked()
    large = {str(p): (ROOT / p).stat().st_size for p in files if (ROOT / p).stat().st_size > MAX_FILE}
    assert not large, f"tracked files over {MAX_FILE // 1024} KB: {large}"
    figures = sum((ROOT / p).stat().st_size for p in files if p.suffix in FIGURE_SUFFIXES)
    assert figures <= MAX_FIGURES, f"figures total {figures / 2**20:.2f} MiB > {MAX_FIGURES / 2**20:.0f} MiB"
