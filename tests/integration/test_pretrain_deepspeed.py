"""DeepSpeed on CPU through the real CLI: ZeRO-2 in one process (gloo, env defaults) with exact resume, and
two processes under torchrun. Subprocesses keep the process group out of the test process. The first
DeepSpeed start JIT-compiles a shm op (~30 s, cached in ~/.cache/torch_extensions afterwards)."""

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
from test_train_data import make_dataset  # noqa: E402

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from unipic.config import load_config
    from unipic.models.bootstrap import bootstrap_base_model

    d = tmp_path_factory.mktemp("ds_inputs")
    return bootstrap_base_model(load_config("ci").model, d / "base"), make_dataset(d / "data")


def run_cli(work: Path, inputs, *extra: str, launcher: list[str] | None = None, resume: bool = False):
    base, data = inputs
    port = free_port()
    args = ["-m", "unipic.cli.main", "train", "pretrain", "-p", "ci", "--work-dir", str(work),
            "-s", f"pretrain.dataset={data}", "-s", f"pretrain.base_model={base}", "-s", "pretrain.warmup_steps=0",
            "-s", "pretrain.log_every=1", "-s", "pretrain.sample_prompts=[]", "-s", "pretrain.sample_edits=0",
            "-s", "pretrain.deepspeed.enabled=true", "-s", f"pretrain.deepspeed.master_port={port}",
            "-s", f"pretrain.output={work / 'model'}", *extra]
    if resume:
        args.append("--resume")
    cmd = (launcher + ["--master_port", str(port)] if launcher else [sys.executable]) + args
    env = {**os.environ, "UNIPIC_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1" if launcher else "2"}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout[proc.stdout.index("{"):])


def losses(work: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, (work / "metrics.jsonl").read_text().splitlines())}


def test_zero2_single_process_checkpoints_and_resumes_exactly(tmp_path, inputs):
    common = ("-s", "pretrain.batch_size=4", "-s", "pretrain.checkpoint_every=2", "-s", "pretrain.deepspeed.zero_stage=2")
    full = run_cli(tmp_path / "full", inputs, *common, "-s", "pretrain.steps=4")
    assert full["steps"] == 4
    ckpt = tmp_path / "full" / "checkpoints" / "step-00000004"
    meta = json.loads((ckpt / "checkpoint.json").read_text())
    assert any(f.startswith("deepspeed/") and "optim_states" in f for f in meta["files"])
    assert (tmp_path / "full" / "model" / "model_index.json").is_file()
    run_cli(tmp_path / "part", inputs, *common, "-s", "pretrain.steps=4", "--stop-at", "2")
    resumed = run_cli(tmp_path / "part", inputs, *common, "-s", "pretrain.steps=4", resume=True)
    assert resumed["resumed_from_step"] == 2
    a, b = losses(tmp_path / "full"), losses(tmp_path / "part")
    assert all(v == v and 0 < v < 10 for v in a.values())
    for step in (3, 4):
        assert b[step] == pytest.approx(a[step], rel=1e-5)


def test_two_processes_under_torchrun(tmp_path, inputs):
    torchrun = str(Path(sys.executable).parent / "torchrun")
    out = run_cli(tmp_path, inputs, "-s", "pretrain.batch_size=2", "-s", "pretrain.steps=3",
                  "-s", "pretrain.deepspeed.zero_stage=2", launcher=[torchrun, "--nproc_per_node", "2"])
    assert out["steps"] == 3
    recs = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {r["world_size"] for r in recs} == {2}
    ckpt = tmp_path / "checkpoints" / "step-00000003"
    assert (ckpt / "trainer_state.rank0.pt").is_file() and (ckpt / "trainer_state.rank1.pt").is_file()
    meta = json.loads((ckpt / "checkpoint.json").read_text())
    assert meta["world_size"] == 2
    assert sum("optim_states" in f for f in meta["files"]) == 2  # ZeRO-2: one optimizer partition per rank
