"""The Flow-GRPO objective for one minibatch and one sampled timestep.

policy term: mean over samples of max(-A r, -A clip(r, 1 - eps, 1 + eps)), r = exp(logp - logp_old) on the
mean-over-elements log-prob; KL term: ||mu_theta - mu_ref||^2 / (2 s^2) where the reference is the same model
with LoRA disabled (no second copy of the weights). Samples of zero-variance groups are masked out, not removed,
so the batch shape, and with it the ratio-exactly-1 property of the first minibatch, is kept.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from unipic.rl.rollout import RolloutChunk, RolloutPipeline, model_time
from unipic.rl.sde import kl_to_reference, sde_step_with_logprob


@dataclass
class StepLoss:
    loss: torch.Tensor
    policy: torch.Tensor
    kl: torch.Tensor
    ratio: torch.Tensor
    """(B,) importance ratios (detached)."""
    log_prob: torch.Tensor
    """(B,) new log-probs (detached)."""
    clipfrac: float
    approx_kl: float


def has_lora(model: Any) -> bool:
    return bool(getattr(model, "_hf_peft_config_loaded", False))


@contextlib.contextmanager
def reference_policy(pipe: Any, ref_transformer: torch.nn.Module | None = None) -> Iterator[None]:
    """Make `pipe` compute the reference policy inside the block: LoRA disabled, or a frozen full copy
    swapped in for full fine-tuning."""
    model = pipe.transformer
    if has_lora(model):
        model.disable_adapters()
        try:
            yield
        finally:
            model.enable_adapters()
    elif ref_transformer is not None:
        pipe.transformer = ref_transformer
        try:
            yield
        finally:
            pipe.transformer = model
    else:
        raise RuntimeError("KL needs a reference: add LoRA adapters, or pass the frozen reference transformer")


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    w = mask.to(device=x.device, dtype=x.dtype)
    return (x * w).sum() / w.sum().clamp(min=1.0)


def grpo_step_loss(
    pipe: RolloutPipeline,
    chunk: RolloutChunk,
    j: int,
    advantages: torch.Tensor,
    keep: torch.Tensor,
    *,
    noise_level: float,
    guidance_scale: float,
    clip_range: float,
    kl_beta: float,
    ref_transformer: torch.nn.Module | None = None,
) -> StepLoss:
    """Loss of transition j (x_j -> x_{j+1}) of a rollout chunk under the current policy."""
    x = chunk.latents[:, j]
    x_next = chunk.latents[:, j + 1]
    sig, sig_next = chunk.sigmas[j], chunk.sigmas[j + 1]
    t = model_time(pipe, sig, x.shape[0])
    v = pipe.predict_velocity(x, t, chunk.embeds, chunk.pooled, chunk.ref_latents, guidance_scale)
    step = sde_step_with_logprob(v, x, sig, sig_next, noise_level=noise_level, prev_sample=x_next)
    assert step.log_prob is not None
    old = chunk.log_probs[:, j].to(step.log_prob)
    ratio = torch.exp(step.log_prob - old)
    adv = advantages.to(ratio)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    policy = masked_mean(torch.maximum(unclipped, clipped), keep)
    if kl_beta > 0:
        with torch.no_grad(), reference_policy(pipe, ref_transformer):
            v_ref = pipe.predict_velocity(x, t, chunk.embeds, chunk.pooled, chunk.ref_latents, guidance_scale)
            ref = sde_step_with_logprob(v_ref, x, sig, sig_next, noise_level=noise_level, prev_sample=x_next)
        kl = masked_mean(kl_to_reference(step.mean, ref.mean.detach(), step.std), keep)
    else:
        kl = torch.zeros((), dtype=policy.dtype)
    loss = policy + kl_beta * kl
    with torch.no_grad():
        m = keep
        clipfrac = float(masked_mean(((ratio - 1.0).abs() > clip_range).float(), m))
        approx_kl = float(masked_mean(0.5 * (step.log_prob - old) ** 2, m))
    return StepLoss(loss=loss, policy=policy.detach(), kl=kl.detach(), ratio=ratio.detach(),
                    log_prob=step.log_prob.detach(), clipfrac=clipfrac, approx_kl=approx_kl)
