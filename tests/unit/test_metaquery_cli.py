"""`unipic train metaquery` and `unipic understand` end to end through the real CLI entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PIL import Image
from test_metaquery_helpers import make_shapes_dataset, make_tiny_pipeline


def _unipic(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "UNIPIC_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "unipic.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=cwd,
    )


def test_understand_names_a_missing_model(tmp_path):
    img = tmp_path / "x.png"
    Image.new("RGB", (32, 32), "white").save(img)
    out = _unipic("understand", "--image", str(img), "--model", str(tmp_path / "nope"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "nope" in out.stderr


@pytest.mark.slow
def test_train_then_understand(tmp_path):
    data = make_shapes_dataset(tmp_path / "data", n_t2i=4, n_edit=4, shard_size=4)
    make_tiny_pipeline().save_pretrained(tmp_path / "start")
    sets = [
        f"metaquery.train.dataset={data}",
        f"metaquery.train.init_from={tmp_path / 'start'}",
        f"metaquery.train.output={tmp_path / 'mq'}",
        "metaquery.train.steps=2",
        "metaquery.train.batch_size=2",
        "metaquery.train.sample_steps=1",
        "metaquery.train.precision=fp32",
        f"run.workdir={tmp_path / 'runs'}",
    ]
    args = [x for s in sets for x in ("--set", s)]
    out = _unipic("train", "metaquery", "-p", "ci", *args)
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout[out.stdout.index("{\n") :])  # libraries may print warnings before it
    assert summary["model"] == str(tmp_path / "mq") and summary["steps"] == 2 and summary["stage"] == 2
    assert (tmp_path / "mq" / "model_index.json").is_file()
    img = tmp_path / "src.png"
    Image.new("RGB", (32, 32), "white").save(img)
    out = _unipic(
        "understand",
        "-p",
        "ci",
        "--image",
        str(img),
        "--question",
        "What is here?",
        "--model",
        str(tmp_path / "mq"),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer["question"] == "What is here?" and isinstance(answer["answer"], str)


@pytest.mark.slow
def test_generate_and_edit_pick_the_metaquery_class(tmp_path):
    make_tiny_pipeline().save_pretrained(tmp_path / "mq")
    src = tmp_path / "src.png"
    Image.new("RGB", (32, 32), "white").save(src)
    out = _unipic(
        "generate",
        "--model",
        str(tmp_path / "mq"),
        "--prompt",
        "a red circle",
        "--out",
        str(tmp_path / "gen"),
        "--steps",
        "2",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert Image.open(tmp_path / "gen" / "image-000.png").size == (32, 32)
    out = _unipic(
        "edit",
        "--model",
        str(tmp_path / "mq"),
        "--image",
        str(src),
        "--instruction",
        "add a blue square",
        "--out",
        str(tmp_path / "edit"),
        "--steps",
        "2",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "edit" / "images.json").is_file()


def test_model_alias_names_this_runs_metaquery_output():
    from unipic.cli.understand import resolve_model
    from unipic.config import load_config

    cfg = load_config("ci", ["run.workdir=/w", "metaquery.train.stage=1"])
    assert resolve_model("metaquery", cfg) == "/w/unipic-ci/metaquery-stage1/model"
    cfg = load_config("ci", ["metaquery.train.output=s3://unipic-models/mq"])
    assert resolve_model("metaquery", cfg) == "s3://unipic-models/mq"
    assert resolve_model("/some/dir", cfg) == "/some/dir"
