"""`unipic train rl-edit / rl-t2i`: bad input fails with a message that names the problem and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _unipic(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unipic.cli.main", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_group_size_not_dividing_the_batch_names_both_numbers():
    proc = _unipic("train", "rl-t2i", "-p", "ci", "--set", "rl.grpo.group_size=3")
    assert proc.returncode == 2
    assert "rollout_batch_size=8 is not a multiple of group_size=3" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_base_model_names_the_key(tmp_path):
    proc = _unipic("train", "rl-edit", "-p", "ci", "--work-dir", str(tmp_path))
    assert proc.returncode == 2
    assert "rl.edit.base_model is empty" in proc.stderr
