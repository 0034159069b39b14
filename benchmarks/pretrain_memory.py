"""(c) Peak memory of pre-training per preset: measured (process peak RSS over a T2I and an edit step at the
preset's batch size, one subprocess per preset) next to the trainer's up-front estimate. `base` cannot run
here (2.2 B params); its estimate is computed from the architecture on the meta device.

    .venv/bin/python benchmarks/pretrain_memory.py [--presets ci smoke]

Writes benchmarks/results/pretrain_memory.*
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pretrain_common import ROOT, environment, make_inputs, write_results


def one(preset: str) -> dict:
    from unipic.config import load_config
    from unipic.training.memory import estimate_pretrain_bytes
    from unipic.training.metrics import peak_rss_gb, rss_gb
    from unipic.training.pretrain import PretrainTrainer

    cfg = load_config(preset).pretrain
    base, data = make_inputs(preset, n_t2i=cfg.batch_size * 2, n_edit=cfg.batch_size * 2)
    cfg = cfg.model_copy(update={"dataset": str(data), "base_model": str(base), "edit_ratio": 0.5,
                                 "log_every": 10**6, "checkpoint_every": 0})
    before = rss_gb()
    trainer = PretrainTrainer(cfg, Path(tempfile.mkdtemp()))
    estimate = estimate_pretrain_bytes(trainer.model, cfg, trainer.pipe)
    times = []
    for _ in range(2):  # one T2I and one edit batch
        start = time.perf_counter()
        trainer.train_step(next(trainer.data))
        times.append(time.perf_counter() - start)
    return {"preset": preset, "batch": cfg.batch_size, "params": sum(p.numel() for p in trainer.model.parameters()),
            "peak_rss_gb": peak_rss_gb(), "rss_before_model_gb": before, "estimate_gb": estimate / 2**30,
            "step_s_t2i": times[0], "step_s_edit": times[1]}


def base_estimate() -> dict:
    from unipic.config import load_config
    from unipic.models.memory import estimate_training_memory

    cfg = load_config("base")
    m, p = cfg.model, cfg.pretrain
    est = estimate_training_memory(m.transformer, batch_size=p.batch_size, latent_size=m.latent_size,
                                   text_tokens=m.text.clip_max_length + m.text.t5_max_length, with_reference=True,
                                   dtype="float32", gradient_checkpointing=p.gradient_checkpointing,
                                   zero_shards=8 if p.deepspeed.zero_stage >= 2 else 1)
    ema = 4 * est.params
    return {"preset": "base", "batch": p.batch_size, "params": est.params, "peak_rss_gb": None,
            "estimate_gb": (est.total_bytes + ema) / 2**30,
            "note": f"per GPU, ZeRO-{p.deepspeed.zero_stage} over 8 ranks, grad checkpointing, edit step "
                    f"({m.image_size} px), bf16 autocast over fp32 master weights; {est.describe()}"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["ci", "smoke"])
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one(args.one)))
        return
    rows = []
    for preset in args.presets:
        proc = subprocess.run([sys.executable, __file__, "--one", preset], cwd=ROOT, capture_output=True, text=True,
                              timeout=1200)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            raise SystemExit(f"{preset} failed:\n{proc.stderr[-3000:]}")
        rows.append(json.loads(line[7:]))
    rows.append(base_estimate())
    table = [{"preset": r["preset"], "batch": r["batch"], "params (M)": r["params"] / 1e6,
              "peak RSS (GiB)": r["peak_rss_gb"] if r["peak_rss_gb"] is not None else "-",
              "RSS before the model (GiB)": r.get("rss_before_model_gb", "-"),
              "trainer estimate (GiB)": r["estimate_gb"]} for r in rows]
    notes = ["peak RSS includes the Python/torch/diffusers process baseline (~0.5 GiB) that the estimate leaves out; "
             "the estimate covers weights, grads, AdamW, EMA, frozen encoders and activations",
             rows[-1]["note"]]
    out = write_results("pretrain_memory", {"rows": rows, "environment": environment()}, table, notes)
    print(out.read_text())


if __name__ == "__main__":
    main()
