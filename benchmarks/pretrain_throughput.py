"""(a) Training throughput: our PretrainTrainer step vs a plain diffusers-style SD3 training loop, side by side.

    .venv/bin/python benchmarks/pretrain_throughput.py [--preset smoke] [--batch 32] [--steps 8] [--rounds 3]

Same transformer weights, batch, data stream and dtype (bf16 autocast over fp32 weights) for both. The plain
loop is what diffusers' train_dreambooth_sd3.py does per step: encode prompt and image, logit-normal
`compute_density_for_timestep_sampling`, scheduler sigmas, `SD3Transformer2DModel` forward, MSE to eps - x0,
backward, clip, default (foreach) AdamW, LR scheduler. Ours adds EMA, span timers and metrics, and uses fused
AdamW. Steps interleave one by one (ours, plain, plain, ours, ...) so load from other jobs on the shared CPU hits both
alike; CPU time per step is reported next to wall time.
Text-to-image batches only (the comparison the aim is stated for). Writes benchmarks/results/pretrain_throughput.*
"""

from __future__ import annotations

import argparse
import statistics
import time

from pretrain_common import environment, make_inputs, write_results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    import tempfile
    from pathlib import Path

    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import compute_density_for_timestep_sampling, compute_loss_weighting_for_sd3

    from unipic.config.train import PretrainConfig
    from unipic.training.data import build_joint_batches
    from unipic.training.pretrain import PretrainTrainer

    base, data = make_inputs(args.preset, n_t2i=args.batch * 8, n_edit=0)
    work = Path(tempfile.mkdtemp(prefix="bench-tp-"))
    cfg = PretrainConfig(dataset=str(data), base_model=str(base), steps=10_000, batch_size=args.batch, lr=5e-4,
                         betas=(0.9, 0.99), edit_ratio=0.0, log_every=10_000, precision="bf16")
    ours = PretrainTrainer(cfg, work)

    # --- the plain diffusers-style loop on a copy of the same weights ---
    pipe = ours.pipe
    kontext_state = {k: v.clone() for k, v in ours.model.state_dict().items() if k != "ref_type_embed"}
    plain_cfg = {k: v for k, v in ours.model.config.items() if k in SD3Transformer2DModel._get_init_keys(
        SD3Transformer2DModel)}
    plain = SD3Transformer2DModel.from_config(plain_cfg)
    plain.load_state_dict(kontext_state)
    plain.train()
    opt = torch.optim.AdamW(plain.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay,
                            eps=cfg.eps)
    sched = get_scheduler("cosine", optimizer=opt, num_warmup_steps=0, num_training_steps=cfg.steps)
    noise_sched = FlowMatchEulerDiscreteScheduler(shift=1.0)
    stream, _ = build_joint_batches(data, batch_size=args.batch, edit_ratio=0.0, seed=1)

    def plain_step() -> None:
        batch = next(stream)
        with torch.no_grad():
            enc = pipe.encode_prompt(batch.captions, do_cfg=False)
            x0 = pipe.encode_image(batch.images).float()
        u = compute_density_for_timestep_sampling("logit_normal", x0.shape[0], logit_mean=0.0, logit_std=1.0)
        idx = (u * noise_sched.config.num_train_timesteps).long()
        timesteps = noise_sched.timesteps[idx]
        sigmas = noise_sched.sigmas[idx].reshape(-1, 1, 1, 1)
        noise = torch.randn_like(x0)
        noisy = (1.0 - sigmas) * x0 + sigmas * noise
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pred = plain(hidden_states=noisy, timestep=timesteps, encoder_hidden_states=enc.embeds,
                         pooled_projections=enc.pooled, return_dict=False)[0]
        weighting = compute_loss_weighting_for_sd3("none", sigmas)
        loss = (weighting.float() * (pred.float() - (noise - x0)) ** 2).reshape(x0.shape[0], -1).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(plain.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        opt.zero_grad()

    def ours_step() -> None:
        ours.train_step(next(ours.data))
        ours.step += 1

    side = pipe.default_image_size // pipe.vae_scale_factor // ours.patch
    tokens_per_step = args.batch * side * side
    wall: dict[str, list[float]] = {"ours": [], "plain": []}
    cpu: dict[str, list[float]] = {"ours": [], "plain": []}
    for fn in (ours_step, plain_step):  # warm-up
        fn()
        fn()
    for i in range(args.rounds * args.steps):  # interleave step by step: load drift hits both alike
        order = (("ours", ours_step), ("plain", plain_step)) if i % 2 == 0 else (("plain", plain_step),
                                                                                  ("ours", ours_step))
        for name, fn in order:
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - w0)
            cpu[name].append(time.process_time() - c0)
    med_wall = {k: tokens_per_step / statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: tokens_per_step / statistics.median(v) for k, v in cpu.items()}
    ratio_wall = med_wall["ours"] / med_wall["plain"]
    ratio_cpu = med_cpu["ours"] / med_cpu["plain"]
    n_params = sum(p.numel() for p in ours.model.parameters())
    payload = {"preset": args.preset, "batch": args.batch, "measured_steps_each": len(wall["ours"]),
               "image_tokens_per_step": tokens_per_step, "transformer_params": n_params,
               "step_wall_s": wall, "step_cpu_s": cpu, "median_img_tok_per_wall_s": med_wall,
               "median_img_tok_per_cpu_s": med_cpu, "ratio_ours_over_plain_wall": ratio_wall,
               "ratio_ours_over_plain_cpu": ratio_cpu, "environment": environment()}
    table = [{"loop": k, "img tok / wall s (median)": med_wall[k], "img tok / CPU s (median)": med_cpu[k],
              "wall s/step (median)": statistics.median(wall[k]), "CPU s/step (median)": statistics.median(cpu[k])}
             for k in wall]
    notes = [f"ratio ours / plain: {ratio_wall:.2f} by wall time, {ratio_cpu:.2f} by CPU time (aim >= 1.0); "
             f"{args.preset} DiT ({n_params / 1e6:.1f} M params), batch {args.batch}, T2I, bf16 autocast, "
             f"{len(wall['ours'])} steps each, interleaved one by one",
             "CPU time (process user+sys over both threads) is the fairer measure on this shared 2-core machine; "
             "wall time depends on what else runs",
             "ours = PretrainTrainer.train_step (fused AdamW, EMA, spans); plain = diffusers train_dreambooth_sd3-style "
             "loop on SD3Transformer2DModel with the same weights (foreach AdamW, no EMA)",
             "both include data decoding, prompt and image encoding in the step"]
    out = write_results("pretrain_throughput", payload, table, notes)
    print(out.read_text())


if __name__ == "__main__":
    main()
