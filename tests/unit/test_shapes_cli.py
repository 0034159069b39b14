"""`unipic data generate|verify|preview` end to end through the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from PIL import Image


def _unipic(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "UNIPIC_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "unipic.cli.main", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_generate_verify_preview(tmp_path):
    out = tmp_path / "ds"
    res = _unipic("data", "generate", "--task", "edit", "--n", "9", "--out", str(out),
                  "--set", "shapes.shard_size=4")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["n_samples"] == 9 and summary["split"] == "train"
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["edit-000000.tar", "edit-000001.tar",
                                                                   "edit-000002.tar"]
    res = _unipic("data", "verify", str(out))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["samples"] == {"edit": 9}
    png = tmp_path / "grid.png"
    res = _unipic("data", "preview", str(out), "--out", str(png), "--n", "4")
    assert res.returncode == 0, res.stderr
    assert Image.open(png).size[0] > 100


def test_heldout_flag_and_existing_output(tmp_path):
    out = tmp_path / "held"
    res = _unipic("data", "generate", "--task", "t2i", "--n", "6", "--heldout", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["split"] == "heldout"
    res = _unipic("data", "generate", "--task", "t2i", "--n", "6", "--out", str(out))
    assert res.returncode == 2 and "--overwrite" in res.stderr and "Traceback" not in res.stderr


def test_unknown_task_is_a_clear_usage_error(tmp_path):
    res = _unipic("data", "generate", "--task", "video", "--n", "2", "--out", str(tmp_path / "x"))
    assert res.returncode == 2
    assert "video" in res.stderr and "t2i" in res.stderr and "Traceback" not in res.stderr


def test_verify_reports_corruption_without_traceback(tmp_path):
    out = tmp_path / "ds"
    assert _unipic("data", "generate", "--task", "t2i", "--n", "4", "--out", str(out)).returncode == 0
    shard = out / "shards" / "t2i-000000.tar"
    shard.write_bytes(shard.read_bytes()[:-1024])
    res = _unipic("data", "verify", str(out))
    assert res.returncode == 2 and "t2i-000000.tar" in res.stderr and "Traceback" not in res.stderr
