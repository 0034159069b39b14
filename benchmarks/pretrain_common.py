"""Shared set-up for the pre-training benchmarks: a bootstrapped base model and a ShapesWorld dataset in a
temporary directory, and the results writer (JSON + a Markdown table in benchmarks/results/)."""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("UNIPIC_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def cpu_model() -> str:
    """The CPU's model name: timings from an AMX and an AVX2-only machine differ several-fold (docs/models.md)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    import torch

    from unipic.training.precision import native_bf16

    return {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "load_avg_1m": os.getloadavg()[0], "machine": platform.machine(),
            "cpu": cpu_model(), "cpu_native_bf16": native_bf16(torch.device("cpu")),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def make_inputs(preset: str, n_t2i: int, n_edit: int, work: Path | None = None) -> tuple[Path, Path]:
    """(base model dir, dataset dir) for `preset`'s model at its image size."""
    from unipic.config import load_config
    from unipic.config.data import ShapesConfig
    from unipic.data.generate import generate_dataset
    from unipic.models.bootstrap import bootstrap_base_model

    work = work or Path(tempfile.mkdtemp(prefix=f"bench-{preset}-"))
    cfg = load_config(preset)
    base = bootstrap_base_model(cfg.model, work / "base", overwrite=True)
    data = work / "data"
    if not (data / "manifest.json").exists():
        generate_dataset(ShapesConfig(image_size=cfg.model.image_size, n_t2i=n_t2i, n_edit=n_edit,
                                      shard_size=max(8, n_t2i // 2)), data)
    return base, data


def write_results(name: str, payload: dict[str, Any], table: list[dict[str, Any]], notes: list[str]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    lines = [f"# {name}", ""]
    if table:
        cols = list(table[0])
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for row in table:
            lines.append("| " + " | ".join(_fmt(row.get(c)) for c in cols) + " |")
        lines.append("")
    lines += [f"- {n}" for n in notes]
    env = payload.get("environment", {})
    if env:
        lines.append(f"- environment: {json.dumps(env)}")
    out = RESULTS / f"{name}.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)
