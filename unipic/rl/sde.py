"""The Flow-GRPO SDE sampling step with its log-probability (yifan123/flow_grpo, `sde_step_with_logprob`).

Rectified flow runs sigma from 1 to 0 with x_sigma = (1 - sigma) x0 + sigma eps and v ~ eps - x0. Turning the ODE
into the marginal-preserving reverse SDE dx = [v + s^2/(2 sigma) (x + (1 - sigma) v)] dt + s dW, with
s = a sqrt(sigma / (1 - sigma)), gives a Gaussian policy per step whose log-density the PPO ratio needs. With
a = 0 the step is the Euler ODE step x + v dt, which is what evaluation samples with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class SDEStep:
    prev_sample: torch.Tensor
    """x at the next (smaller) sigma."""
    log_prob: torch.Tensor | None
    """Per-sample Gaussian log-density of `prev_sample`, averaged over latent elements (None when a = 0)."""
    mean: torch.Tensor
    """The step's mean mu; the KL to the reference policy compares means."""
    std: torch.Tensor
    """s = a sqrt(sigma / (1 - sigma)) per sample, broadcastable to the latents (the Brownian scale, before sqrt(-dt))."""
    step_std: torch.Tensor
    """s sqrt(-dt): the standard deviation of the step's Gaussian."""


def _per_sample(x: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float32, device=like.device)
    if t.ndim == 0:
        t = t.expand(like.shape[0])
    return t.reshape(-1, *([1] * (like.ndim - 1)))


def noise_std(sigma: torch.Tensor, noise_level: float, sigma_max: float) -> torch.Tensor:
    """s = a sqrt(sigma / (1 - sigma)); at sigma = 1 Flow-GRPO substitutes `sigma_max` (the schedule's second
    sigma) in the denominator so that the first step is finite."""
    denom = 1.0 - torch.where(sigma >= 1.0, torch.full_like(sigma, sigma_max), sigma)
    return noise_level * torch.sqrt(sigma / denom)


def gaussian_log_prob_mean(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, std^2 I), averaged (not summed) over every non-batch element. Averaging keeps the ratio
    near 1 at any resolution; it is why Flow-GRPO's PPO clip range is as small as 1e-4."""
    lp = -((x - mean) ** 2) / (2 * std**2) - torch.log(std) - 0.5 * math.log(2 * math.pi)
    return lp.mean(dim=tuple(range(1, lp.ndim)))


def sde_step_with_logprob(
    velocity: torch.Tensor,
    sample: torch.Tensor,
    sigma: torch.Tensor | float,
    sigma_next: torch.Tensor | float,
    *,
    noise_level: float = 0.7,
    sigma_max: float | None = None,
    prev_sample: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> SDEStep:
    """One step from `sigma` to `sigma_next` (< sigma). Pass `prev_sample` to score a stored transition instead of
    drawing a new one (the log-prob is then differentiable in `velocity` only, as in Flow-GRPO).
    `sigma_max` replaces sigma = 1 in the noise scale's denominator; by default the step's own `sigma_next`,
    which at the first step is the schedule's second sigma, exactly Flow-GRPO's choice.

    Computed in float32 whatever the inputs: bf16 overflows in s^2/(2 sigma)."""
    velocity = velocity.float()
    sample = sample.float()
    sig = _per_sample(sigma, sample)
    sig_next = _per_sample(sigma_next, sample)
    dt = sig_next - sig
    if bool((dt >= 0).any()):
        raise ValueError("sde step: sigma_next must be smaller than sigma (sampling runs from 1 to 0)")
    if noise_level == 0.0:
        mean = sample + velocity * dt
        zero = torch.zeros_like(sig)
        return SDEStep(prev_sample=mean if prev_sample is None else prev_sample.float(), log_prob=None,
                       mean=mean, std=zero, step_std=zero)
    if sigma_max is None:
        std = noise_level * torch.sqrt(sig / (1.0 - torch.where(sig >= 1.0, sig_next, sig)))
    else:
        std = noise_std(sig, noise_level, sigma_max)
    mean = sample * (1 + std**2 / (2 * sig) * dt) + velocity * (1 + std**2 * (1 - sig) / (2 * sig)) * dt
    step_std = std * torch.sqrt(-dt)
    if prev_sample is None:
        noise = torch.randn(sample.shape, generator=generator, dtype=torch.float32,
                            device="cpu" if generator is None else generator.device).to(sample.device)
        prev_sample = mean + step_std * noise
    prev_sample = prev_sample.float().detach()
    log_prob = gaussian_log_prob_mean(prev_sample, mean, step_std)
    return SDEStep(prev_sample=prev_sample, log_prob=log_prob, mean=mean, std=std, step_std=step_std)


def kl_to_reference(mean: torch.Tensor, ref_mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Per-sample KL between the policy's and the reference's step Gaussians, as Flow-GRPO computes it:
    ||mu - mu_ref||^2 / (2 s^2), averaged over elements. Like Flow-GRPO this uses s, not s sqrt(-dt)
    (flow_grpo issues #78/#22): the Delta-t factor only rescales beta per step."""
    kl = (mean - ref_mean) ** 2 / (2 * std**2)
    return kl.mean(dim=tuple(range(1, kl.ndim)))
