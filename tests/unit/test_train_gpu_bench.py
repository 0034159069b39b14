"""benchmarks/gpu_pretrain_step.py at reduced size on the CPU: the same code path the GPU run takes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_step_benchmark_runs_reduced_on_cpu(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_pretrain_step", ROOT / "benchmarks" / "gpu_pretrain_step.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    result = mod.main(["--reduced", "--steps", "1", "--batch", "2", "--edit", "--out", str(tmp_path),
                       "--peak-seconds", "0.1"])
    saved = json.loads((tmp_path / "pretrain_gpu_step_cpu_reduced.json").read_text())
    assert saved["device"] == "cpu" and saved["preset"] == "ci" and saved["edit"] is True
    assert saved["image_tokens"] == 2 * 64  # 32 px, pixel-unshuffle r=2, patch 2: 8x8 tokens, plus the reference
    f = saved["flops_per_step"]
    assert f["counted"] > 0 and f["attention"] > 0 and f["total"] == f["counted"] + f["attention"]
    assert 0 < saved["mfu_vs_measured"] and saved["step_s_median"] > 0 and saved["peak_memory_gb"] > 0
    assert result["img_tok_per_s"] == saved["img_tok_per_s"]
