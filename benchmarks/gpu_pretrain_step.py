"""(d) One training step of the `base` architecture (SD3.5-Medium Kontext DiT, random init) at 512 px in bf16 on
one GPU: step time, image tokens/s, MFU (vs a bf16 matmul peak measured in the same run, and vs the nominal
peak), peak memory. `--reduced` runs the same code on the CPU with the `ci` transformer at 32 px (for tests).

    python benchmarks/gpu_pretrain_step.py [--batch 4] [--steps 5] [--edit] [--grad-ckpt] [--out DIR]
    python benchmarks/gpu_pretrain_step.py --reduced --steps 1          # CPU, seconds

Writes DIR/pretrain_gpu_step_<device>.json (default DIR: benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pretrain_common import RESULTS, environment  # noqa: E402

NOMINAL_BF16_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--image-size", type=int, default=512)
    ap.add_argument("--edit", action="store_true", help="editing step: reference tokens double the image sequence")
    ap.add_argument("--grad-ckpt", action="store_true")
    ap.add_argument("--reduced", action="store_true", help="CPU, ci transformer, 32 px")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--peak-seconds", type=float, default=1.0, help="time per matmul-peak trial")
    args = ap.parse_args(argv)

    import torch

    from unipic.config import load_config
    from unipic.config.train import TrainerConfig
    from unipic.models.factory import build_transformer
    from unipic.training.flops import dit_train_flops, matmul_peak_flops
    from unipic.training.synthetic import SyntheticFlowTrainer

    cuda = torch.cuda.is_available() and not args.reduced
    device = torch.device("cuda" if cuda else "cpu")
    preset = "ci" if args.reduced else "base"
    mcfg = load_config(preset).model
    image_size = mcfg.image_size if args.reduced else args.image_size
    latent_side = image_size // mcfg.autoencoder.downsample
    text_tokens = mcfg.text.clip_max_length + (mcfg.text.t5_max_length if mcfg.text.use_t5 else 0)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    torch.manual_seed(0)
    model = build_transformer(mcfg.transformer).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    cfg = TrainerConfig(steps=10_000, batch_size=args.batch, lr=4e-5, precision="bf16", ema_decay=0.0,
                        log_every=10_000, gradient_checkpointing=args.grad_ckpt, fused_adamw=True)
    trainer = SyntheticFlowTrainer(cfg, model, Path(tempfile.mkdtemp()), latent_side=latent_side,
                                   text_tokens=text_tokens, edit=args.edit)
    batch = next(trainer.data)

    def fwd_bwd() -> None:
        trainer.forward_backward_step(batch)
        trainer.engine.zero_grad()

    flops = dit_train_flops(trainer.model, fwd_bwd, batch=args.batch, image_tokens=trainer.image_tokens,
                            text_tokens=text_tokens)
    trainer.train_step(next(trainer.data))
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        trainer.train_step(next(trainer.data))
        sync()
        times.append(time.perf_counter() - start)
    peak_mem = torch.cuda.max_memory_allocated() if cuda else None
    from unipic.training.metrics import peak_rss_gb

    measured_peak = matmul_peak_flops(torch.bfloat16, n=8192 if cuda else 1024, seconds=args.peak_seconds, trials=3,
                                      device=device)
    name = torch.cuda.get_device_name() if cuda else "cpu"
    nominal = next((v for k, v in NOMINAL_BF16_PEAK.items() if k in name), None)
    med = statistics.median(times)
    achieved = flops["total"] / med
    result = {
        "device": name, "preset": preset, "image_size": image_size, "batch": args.batch, "edit": args.edit,
        "gradient_checkpointing": args.grad_ckpt, "params": n_params, "image_tokens": trainer.image_tokens,
        "text_tokens": text_tokens, "step_s": times, "step_s_median": med,
        "img_tok_per_s": args.batch * trainer.image_tokens / med, "flops_per_step": flops,
        "achieved_flops": achieved, "matmul_peak_bf16_measured": measured_peak,
        "mfu_vs_measured": achieved / measured_peak, "nominal_peak_bf16": nominal,
        "mfu_vs_nominal": achieved / nominal if nominal else None,
        "peak_memory_gb": peak_mem / 2**30 if peak_mem is not None else peak_rss_gb(),
        "peak_memory_kind": "cuda max_memory_allocated" if cuda else "process peak RSS",
        "environment": environment(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    tag = "cpu_reduced" if args.reduced else name.replace(" ", "_").lower()
    path = args.out / f"pretrain_gpu_step_{tag}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("device", "step_s_median", "img_tok_per_s", "mfu_vs_measured",
                                             "peak_memory_gb")}, indent=2))
    return result


if __name__ == "__main__":
    main()
