"""Flow-GRPO speed and memory: rollout images/s, the share of an RL round spent in the model's forward/backward
(torch.profiler), and the peak memory of an RL round against a pre-training step of the same model and batch.

    .venv/bin/python benchmarks/rl_speed.py --model /path/to/pipeline --out benchmarks/results/rl_speed

Each measurement runs in its own subprocess so that peak RSS is not shared. Numbers depend on what else runs on
the machine: the result file records the load average next to them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pipe(model: str):
    from unipic.pipelines.kontext import UniPicKontextPipeline

    return UniPicKontextPipeline.from_pretrained(model)


def _conditions(kind: str, n: int):
    from PIL import Image

    from unipic.data.shapes import Scene, SceneObject, render, side_px
    from unipic.rl.rollout import Condition

    prompts = ["a red circle", "a blue square", "a green triangle", "a yellow circle"]
    if kind == "t2i":
        return [Condition(prompt=prompts[i % 4]) for i in range(n)]
    s = side_px("large", 32)
    src = Image.fromarray(render(Scene(size=32, objects=[SceneObject(shape="circle", color="red", size="large",
                                                                     bbox=(4, 4, 4 + s, 4 + s))])))
    return [Condition(prompt="make the red circle blue", source=src, key=("make", i)) for i in range(n)]


def bench_rollout(model: str, kind: str, batch: int, steps: int, repeats: int) -> dict:
    import torch

    from unipic.rl.rollout import rollout_chunk, rollout_sigmas

    pipe = _pipe(model)
    sig = rollout_sigmas(pipe, steps)
    conds = _conditions(kind, batch)
    gen = torch.Generator().manual_seed(0)
    rollout_chunk(pipe, conds, sigmas=sig, noise_level=0.7, guidance_scale=4.0, generator=gen)
    t0 = time.perf_counter()
    for _ in range(repeats):
        rollout_chunk(pipe, conds, sigmas=sig, noise_level=0.7, guidance_scale=4.0, generator=gen)
    dt = time.perf_counter() - t0
    return {"kind": kind, "batch": batch, "sde_steps": steps, "cfg": 4.0, "images_per_s": batch * repeats / dt,
            "s_per_rollout_batch": dt / repeats}


class _ShapesReward:
    name = "shapes"

    def __init__(self, kind):
        from unipic.rl.rewards.shapes import ShapesEditReward, ShapesT2IReward

        self.inner = ShapesEditReward() if kind == "edit" else ShapesT2IReward()

    def __call__(self, batch):
        return self.inner(batch)


def bench_round(model: str, kind: str, batch: int, steps: int, work: Path, profile: bool) -> dict:
    """One warm-up round, then one profiled round; the share counts transformer forwards and backward passes."""
    import torch
    from torch.profiler import ProfilerActivity, record_function

    from unipic.config.rl import GRPOConfig, RLStageConfig
    from unipic.rl.prompts import PromptSource
    from unipic.rl.trainer import FlowGRPOTrainer

    pipe = _pipe(model)
    base_rss = _rss_mb()
    g = GRPOConfig(group_size=min(8, batch), rollout_batch_size=batch, num_steps=steps, guidance_scale=4.0)
    stage = RLStageConfig(steps=2, prompts_per_round=max(1, batch // g.group_size), checkpoint_every=0,
                          log_every=1, fused_adamw=False)
    reward = _ShapesReward(kind)
    # A reward with within-group variance guarantees that every minibatch trains (no zero-variance skip).
    import numpy as np

    from unipic.rl.rewards import RewardResult

    def varied(b):
        res = reward(b)
        res.scores = res.scores + torch.tensor([float(np.asarray(im).mean()) / 2550 for im in b.images])
        return res

    tr = FlowGRPOTrainer(stage, g, pipe, varied, PromptSource(_conditions(kind, 4 * batch), stage.prompts_per_round),
                         work, task=kind)
    real_velocity = pipe.velocity

    def velocity(*a, **k):
        with record_function("model_forward"):
            return real_velocity(*a, **k)

    pipe.velocity = velocity
    real_backward = tr.engine.backward

    def backward(loss):
        with record_function("model_backward"):
            return real_backward(loss)

    tr.engine.backward = backward
    tr.train_step(next(tr.data))
    t0 = time.perf_counter()
    if profile:
        with torch.profiler.profile(activities=[ProfilerActivity.CPU]) as prof:
            with record_function("rl_round"):
                rec = tr.train_step(next(tr.data))
        total = fwd = bwd = 0.0
        for evt in prof.events():
            if evt.name == "rl_round":
                total += evt.time_range.elapsed_us()
            elif evt.name == "model_forward":
                fwd += evt.time_range.elapsed_us()
            elif evt.name == "model_backward":
                bwd += evt.time_range.elapsed_us()
        share = {"round_s": total / 1e6, "forward_s": fwd / 1e6, "backward_s": bwd / 1e6,
                 "model_share": (fwd + bwd) / total if total else None}
    else:
        rec = tr.train_step(next(tr.data))
        share = {"round_s": time.perf_counter() - t0}
    return {"kind": kind, "batch": batch, "sde_steps": steps, "trained_timesteps": g.num_train_timesteps,
            "kl_beta": g.kl_beta, "lora_rank": g.lora.rank, **share, "optimizer_steps": rec.get("optimizer_steps"),
            "peak_rss_mb": _rss_mb(), "model_rss_mb": base_rss, "step_rss_mb": _rss_mb() - base_rss}


def bench_pretrain_step(model: str, batch: int) -> dict:
    """A flow-matching pre-training step (full fine-tuning, AdamW) of the same model at the same batch."""
    import torch

    from unipic.diffusion import add_noise, velocity_target

    pipe = _pipe(model)
    base_rss = _rss_mb()
    tr = pipe.transformer.train()
    opt = torch.optim.AdamW(tr.parameters(), lr=1e-4)
    enc = pipe.encode_prompt(["a red circle"] * batch, do_cfg=False)
    x0 = torch.randn(batch, *pipe.latent_shape)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        noise = torch.randn_like(x0)
        sig = torch.rand(batch)
        v = pipe.velocity(add_noise(x0, noise, sig), sig * 1000, enc.embeds, enc.pooled)
        loss = torch.nn.functional.mse_loss(v, velocity_target(x0, noise))
        loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
    return {"batch": batch, "step_s": min(times), "peak_rss_mb": _rss_mb(), "model_rss_mb": base_rss,
            "step_rss_mb": _rss_mb() - base_rss}


def _child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.what == "rollout":
        out = bench_rollout(args.model, args.kind, args.batch, args.steps, args.repeats)
    elif args.what == "round":
        out = bench_round(args.model, args.kind, args.batch, args.steps, Path(args.work), profile=True)
    else:
        out = bench_pretrain_step(args.model, args.batch)
    print("RESULT " + json.dumps(out))


def _run(what: str, args: argparse.Namespace, **extra) -> dict:
    cmd = [sys.executable, __file__, "--child", what, "--model", args.model, "--threads", str(args.threads),
           "--batch", str(args.batch), "--steps", str(args.steps), "--repeats", str(args.repeats),
           "--work", str(Path(args.out).parent / f".rl_speed_work_{what}_{extra.get('kind', '')}")]
    for k, v in extra.items():
        cmd += [f"--{k}", str(v)]
    env = {**os.environ, "UNIPIC_NO_PROGRESS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{what} failed:\n{proc.stderr[-3000:]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="pipeline folder")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/rl_speed"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--kind", default="t2i")
    ap.add_argument("--work", default="")
    ap.add_argument("--child", default="")
    args = ap.parse_args()
    if args.child:
        args.what = args.child
        _child(args)
        return
    results = {"model": args.model, "threads": args.threads, "loadavg_before": os.getloadavg(),
               "rollout": [_run("rollout", args, kind=k) for k in ("t2i", "edit")],
               "round": [_run("round", args, kind=k) for k in ("t2i", "edit")],
               "pretrain_step": _run("pretrain", args), "loadavg_after": os.getloadavg()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    pre = results["pretrain_step"]
    lines = [f"# Flow-GRPO speed ({Path(args.model).name}, {args.threads} thread(s), batch {args.batch}, "
             f"{args.steps} SDE steps, CFG 4)", "",
             f"Load average before/after: {results['loadavg_before'][0]:.1f} / {results['loadavg_after'][0]:.1f} "
             "(the machine is shared; numbers are lower bounds).", "",
             "| what | value |", "|---|---|"]
    for r in results["rollout"]:
        lines.append(f"| rollout images/s ({r['kind']}) | {r['images_per_s']:.1f} |")
    for r in results["round"]:
        lines.append(f"| RL round ({r['kind']}): time | {r['round_s']:.2f} s |")
        lines.append(f"| RL round ({r['kind']}): model forward+backward share (torch.profiler) | "
                     f"{100 * r['model_share']:.1f} % |")
        lines.append(f"| RL round ({r['kind']}): peak RSS over the loaded model | {r['step_rss_mb']:.0f} MB |")
    lines.append(f"| pre-training step (batch {pre['batch']}, full FT): peak RSS over the loaded model | "
                 f"{pre['step_rss_mb']:.0f} MB |")
    lines.append(f"| pre-training step time | {pre['step_s']:.2f} s |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
