"""Speed and memory of a MetaQuery joint (stage 2) training step against a Kontext pre-training step.

    .venv/bin/python benchmarks/metaquery_speed.py [--preset smoke] [--batch-size 32] [--steps 15] [--repeats 2]

Both trainers use the same smoke DiT, the same data (T2I and edit batches alternating) and the same precision;
the MetaQuery step adds the frozen Qwen2.5-VL forward (prompt + source image + queries) and the connector's
forward/backward. Each measurement runs in its own process (so peak RSS is that trainer's), in the order
kontext, metaquery, kontext, metaquery, ... to spread drift from other jobs on the machine evenly.

Writes benchmarks/results/metaquery_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("UNIPIC_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = Path(__file__).resolve().parent / "results"


def prepare(work: Path, preset: str) -> tuple[Path, Path]:
    from unipic.config import load_config
    from unipic.data.generate import generate_dataset
    from unipic.models.bootstrap import bootstrap_base_model

    cfg = load_config(preset)
    data, base = work / "data", work / "kontext"
    if not (data / "manifest.json").is_file():
        generate_dataset(
            cfg.shapes.model_copy(update={"n_t2i": 512, "n_edit": 512, "shard_size": 256}),
            data,
            overwrite=True,
        )
    if not (base / "model_index.json").is_file():
        bootstrap_base_model(cfg.model, base, overwrite=True)
    return data, base


def measure(kind: str, work: Path, preset: str, batch: int, steps: int, warmup: int, threads: int) -> dict:
    """One trainer in this process: warm-up steps, then `steps` timed optimizer steps (fwd + bwd + AdamW)."""
    import resource

    import torch

    from unipic.config import load_config
    from unipic.training.metaquery import MetaQueryTrainer
    from unipic.training.pretrain import PretrainTrainer

    cfg = load_config(preset)
    data, base = work / "data", work / "kontext"
    common = {
        "batch_size": batch,
        "steps": warmup + steps,
        "ema_decay": 0.0,
        "checkpoint_every": 0,
        "sample_every": 0,
        "dataset": str(data),
        "warmup_steps": 0,
        "threads": threads,
    }
    if kind == "kontext":
        trainer = PretrainTrainer(
            cfg.pretrain.model_copy(update={**common, "base_model": str(base), "edit_ratio": 0.5}),
            work / "run-kontext",
        )
    else:
        train = cfg.metaquery.train.model_copy(
            update={**common, "stage": 2, "init_from": str(base), "edit_ratio": 0.5}
        )
        trainer = MetaQueryTrainer(
            cfg.metaquery.model_copy(update={"image_to": "both", "train": train}), work / "run-metaquery"
        )
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    frozen_mllm = sum(p.numel() for p in trainer.pipe.mllm.parameters()) if kind == "metaquery" else 0
    times = {"t2i": [], "edit": []}
    for i in range(warmup + steps):
        batch_ = next(trainer.data)
        t0 = time.perf_counter()
        trainer.train_step(batch_)
        dt = time.perf_counter() - t0
        if i >= warmup:
            times[batch_.kind].append(dt)
    spans = {k: v / steps for k, v in trainer.spans.pop().items()}
    return {
        "kind": kind,
        "batch_size": batch,
        "precision": trainer.precision,
        "step_s_median": statistics.median(times["t2i"] + times["edit"]),
        "t2i_step_s_median": statistics.median(times["t2i"]) if times["t2i"] else None,
        "edit_step_s_median": statistics.median(times["edit"]) if times["edit"] else None,
        "spans_s_per_step": spans,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "trainable_params": trainable,
        "frozen_mllm_params": frozen_mllm,
        "optimizer_state_mb": sum(
            t.numel() * t.element_size()
            for s in trainer.engine.optimizer.state.values()
            for t in s.values()
            if torch.is_tensor(t)
        )
        / 2**20
        if hasattr(trainer.engine, "optimizer")
        else None,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/metaquery_speed"))
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads per run (0 = torch's default)")
    ap.add_argument("--one", choices=["kontext", "metaquery"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.one:
        print(
            json.dumps(
                measure(
                    args.one, args.work, args.preset, args.batch_size, args.steps, args.warmup, args.threads
                )
            )
        )
        return
    prepare(args.work, args.preset)
    load = [round(x, 1) for x in os.getloadavg()]
    runs: dict[str, list[dict]] = {"kontext": [], "metaquery": []}
    for _ in range(args.repeats):
        for kind in ("kontext", "metaquery"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    kind,
                    "--work",
                    str(args.work),
                    "--preset",
                    args.preset,
                    "--batch-size",
                    str(args.batch_size),
                    "--steps",
                    str(args.steps),
                    "--warmup",
                    str(args.warmup),
                    "--threads",
                    str(args.threads),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            runs[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(kind, runs[kind][-1]["step_s_median"], flush=True)
    summary = {}
    for kind, rs in runs.items():
        summary[kind] = {
            "step_s": statistics.median(r["step_s_median"] for r in rs),
            "t2i_step_s": statistics.median(r["t2i_step_s_median"] for r in rs),
            "edit_step_s": statistics.median(r["edit_step_s_median"] for r in rs),
            "peak_rss_gb": max(r["peak_rss_gb"] for r in rs),
            "trainable_params": rs[0]["trainable_params"],
            "frozen_mllm_params": rs[0]["frozen_mllm_params"],
            "optimizer_state_mb": rs[0]["optimizer_state_mb"],
        }
    k, m = summary["kontext"], summary["metaquery"]
    from unipic.config import load_config

    cfg = load_config(args.preset)
    text_tokens = cfg.model.text.clip_max_length + (
        cfg.model.text.t5_max_length if cfg.model.text.use_t5 else 0
    )
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_avg_1_5_15": load,
        "preset": args.preset,
        "batch_size": args.batch_size,
        "timed_steps": args.steps,
        "warmup_steps": args.warmup,
        "repeats": args.repeats,
        "precision": runs["kontext"][0]["precision"],
        "threads": runs["kontext"][0]["threads"],
        "dit_text_tokens": {"kontext": text_tokens, "metaquery": cfg.metaquery.num_queries},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "metaquery_speed.json").write_text(
        json.dumps({"meta": meta, "summary": summary, "runs": runs}, indent=2)
    )
    lines = [
        "# MetaQuery joint training step vs Kontext pre-training step (CPU)",
        "",
        f"{meta['date']}, {meta['machine']}, load average {load} (other jobs were running: absolute times "
        f"are noisy, the ratio is the number to read). Preset `{args.preset}`, batch {args.batch_size}, "
        f"{meta['precision']}, {meta['threads']} torch thread(s), {args.steps} timed steps after "
        f"{args.warmup} warm-up, T2I and edit batches alternating, {args.repeats} runs each, each in its own process.",
        "",
        "| | Kontext pre-train step | MetaQuery stage-2 step | ratio |",
        "|---|---|---|---|",
        f"| step (median, s) | {k['step_s']:.3f} | {m['step_s']:.3f} | {m['step_s'] / k['step_s']:.2f}x |",
        f"| T2I batch (s) | {k['t2i_step_s']:.3f} | {m['t2i_step_s']:.3f} | "
        f"{m['t2i_step_s'] / k['t2i_step_s']:.2f}x |",
        f"| edit batch (s) | {k['edit_step_s']:.3f} | {m['edit_step_s']:.3f} | "
        f"{m['edit_step_s'] / k['edit_step_s']:.2f}x |",
        f"| peak RSS (GiB) | {k['peak_rss_gb']:.2f} | {m['peak_rss_gb']:.2f} | "
        f"{m['peak_rss_gb'] / k['peak_rss_gb']:.2f}x |",
        f"| trainable params (M) | {k['trainable_params'] / 1e6:.2f} | {m['trainable_params'] / 1e6:.2f} | |",
        f"| frozen MLLM params (M) | – | {m['frozen_mllm_params'] / 1e6:.2f} | |",
        f"| AdamW state (MiB) | {k['optimizer_state_mb'] or 0:.1f} | {m['optimizer_state_mb'] or 0:.1f} | |",
        "",
        "Kontext's step includes its frozen CLIP-L/CLIP-G/T5 prompt encoding; MetaQuery's replaces that with the "
        "frozen Qwen2.5-VL forward (with the source image on edit batches) plus the connector's forward and "
        "backward (gradients flow back to the queries through the frozen MLLM).",
        f"The DiT's text sequence is {text_tokens} tokens for Kontext (CLIP {cfg.model.text.clip_max_length} + "
        f"T5 {cfg.model.text.t5_max_length if cfg.model.text.use_t5 else 0}) against {cfg.metaquery.num_queries} "
        "query tokens for MetaQuery: the joint attention of every DiT block is shorter, which is why the "
        "MetaQuery step can be the cheaper one at this size despite the extra MLLM forward.",
    ]
    (RESULTS / "metaquery_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
