"""MetaQuery stage 2 under DeepSpeed ZeRO-2 (bf16, gloo, one process) through the real CLI, then load the export.
A subprocess keeps the process group out of the test process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "unit"))
from test_metaquery_helpers import make_shapes_dataset, make_tiny_pipeline

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_stage2_under_deepspeed_zero2(tmp_path):
    data = make_shapes_dataset(tmp_path / "data", n_t2i=4, n_edit=4, shard_size=4)
    make_tiny_pipeline().save_pretrained(tmp_path / "start")
    sets = {
        "metaquery.train.dataset": data,
        "metaquery.train.init_from": tmp_path / "start",
        "metaquery.train.output": tmp_path / "mq",
        "metaquery.train.steps": 2,
        "metaquery.train.batch_size": 2,
        "metaquery.train.precision": "bf16",
        "metaquery.train.sample_steps": 1,
        "metaquery.train.deepspeed.enabled": "true",
        "metaquery.train.deepspeed.zero_stage": 2,
        "metaquery.train.deepspeed.master_port": free_port(),
    }
    args = [x for k, v in sets.items() for x in ("-s", f"{k}={v}")]
    env = {**os.environ, "UNIPIC_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "unipic.cli.main",
            "train",
            "metaquery",
            "-p",
            "ci",
            "--work-dir",
            str(tmp_path / "work"),
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{\n") :])
    assert summary["steps"] == 2 and summary["final_loss"] > 0
    from unipic.pipelines.metaquery import load_pipeline

    pipe = load_pipeline(tmp_path / "mq")
    assert pipe("a red circle", num_inference_steps=1).images[0].size == (32, 32)
