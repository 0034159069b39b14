"""Rectified-flow (SD3) building blocks shared by pre-training, Flow-GRPO and the pipeline.

Convention (SD3 / diffusers FlowMatchEulerDiscreteScheduler): t = sigma in [0, 1], t = 0 is data, t = 1 is
noise.
    x_t = (1 - t) * x0 + t * eps          velocity target  v = eps - x0
    Euler step from sigma to sigma_next:  x <- x + (sigma_next - sigma) * v
The DiT's `timestep` input is `sigma * num_train_timesteps` (1000).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

NUM_TRAIN_TIMESTEPS = 1000

TimestepSampling = Literal["logit_normal", "uniform", "mode"]


def _bcast(t: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, device=like.device, dtype=like.dtype)
    return t.reshape(-1, *([1] * (like.ndim - 1))) if t.ndim else t


def shift_sigmas(sigmas: torch.Tensor, shift: float) -> torch.Tensor:
    """SD3's static shift: sigma' = s*sigma / (1 + (s-1)*sigma). s > 1 spends more time at high noise."""
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def resolution_mu(
    image_seq_len: int,
    base_seq_len: int = 256,
    max_seq_len: int = 4096,
    base_shift: float = 0.5,
    max_shift: float = 1.15,
) -> float:
    """Resolution-dependent shift parameter mu (SD3/FLUX `calculate_shift`): linear in the token count."""
    m = (max_shift - base_shift) / (max_seq_len - base_seq_len)
    return image_seq_len * m + (base_shift - m * base_seq_len)


def time_shift(mu: float, sigmas: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """Exponential time shift used with `resolution_mu` (diffusers `time_shift_type="exponential"`)."""
    return math.exp(mu) / (math.exp(mu) + (1 / sigmas - 1) ** power)


def sample_sigmas(
    batch_size: int,
    scheme: TimestepSampling = "logit_normal",
    *,
    logit_mean: float = 0.0,
    logit_std: float = 1.0,
    mode_scale: float = 1.29,
    shift: float = 1.0,
    mu: float | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Training noise levels t in (0, 1) (SD3 §3.1 samplers), optionally shifted. Uses only `generator`'s RNG.

    logit_normal: t = sigmoid(N(mean, std)) (SD3's default); uniform; mode: SD3's mode sampling with
    `mode_scale`. Shift: static `shift` (SD3: 3.0), or resolution-dependent with `mu = resolution_mu(tokens)`
    (exponential time shift, as the scheduler's dynamic shifting); not both.
    """
    if mu is not None and shift != 1.0:
        raise ValueError("give either a static shift or a resolution mu, not both")
    if scheme == "logit_normal":
        u = torch.randn(batch_size, generator=generator, device=device) * logit_std + logit_mean
        t = torch.sigmoid(u)
    elif scheme == "uniform":
        t = torch.rand(batch_size, generator=generator, device=device)
    elif scheme == "mode":
        u = torch.rand(batch_size, generator=generator, device=device)
        t = 1 - u - mode_scale * (torch.cos(math.pi * u / 2) ** 2 - 1 + u)
    else:
        raise ValueError(f"unknown timestep sampling '{scheme}'; use logit_normal, uniform or mode")
    t = t.clamp(1e-5, 1 - 1e-5)
    if mu is not None:
        return time_shift(mu, t)
    return shift_sigmas(t, shift) if shift != 1.0 else t


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigmas: torch.Tensor | float) -> torch.Tensor:
    """x_t = (1 - t) x0 + t eps, with one t per sample (or a scalar)."""
    t = _bcast(sigmas, x0)
    return (1 - t) * x0 + t * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """d x_t / d t = eps - x0: what the DiT is trained to predict."""
    return noise - x0


def predict_x0(x_t: torch.Tensor, velocity: torch.Tensor, sigmas: torch.Tensor | float) -> torch.Tensor:
    """The clean sample implied by a velocity: x0 = x_t - t v."""
    return x_t - _bcast(sigmas, x_t) * velocity


def euler_step(
    x: torch.Tensor, velocity: torch.Tensor, sigma: torch.Tensor | float, sigma_next: torch.Tensor | float
) -> torch.Tensor:
    """One deterministic flow-matching ODE step (what FlowMatchEulerDiscreteScheduler.step does)."""
    dt = _bcast(sigma_next, x) - _bcast(sigma, x)
    return (x.float() + dt.float() * velocity.float()).to(x.dtype)


def sigma_to_timestep(
    sigmas: torch.Tensor | float, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS
) -> torch.Tensor:
    return torch.as_tensor(sigmas) * num_train_timesteps


def flow_sigmas(
    num_steps: int,
    shift: float = 3.0,
    mu: float | None = None,
    num_train_timesteps: int = NUM_TRAIN_TIMESTEPS,
) -> torch.Tensor:
    """Inference sigmas, num_steps + 1 values from 1 to 0, identical to
    `FlowMatchEulerDiscreteScheduler(shift=shift).set_timesteps(num_steps)` (or with `mu` and dynamic
    shifting)."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    base = torch.linspace(1, num_train_timesteps, num_train_timesteps) / num_train_timesteps
    train_sigmas = base if mu is not None else shift_sigmas(base, shift)
    s_max, s_min = float(train_sigmas.max()), float(train_sigmas.min())
    sig = torch.from_numpy(
        np.linspace(s_max * num_train_timesteps, s_min * num_train_timesteps, num_steps) / num_train_timesteps
    ).float()
    sig = time_shift(mu, sig) if mu is not None else shift_sigmas(sig, shift)
    return torch.cat([sig.float(), torch.zeros(1)])


def loss_weighting(
    sigmas: torch.Tensor, scheme: Literal["none", "sigma_sqrt", "cosmap"] = "none"
) -> torch.Tensor:
    """Per-sample loss weights (SD3 `compute_loss_weighting_for_sd3`)."""
    if scheme == "none":
        return torch.ones_like(sigmas)
    if scheme == "sigma_sqrt":
        return (sigmas**-2.0).float()
    if scheme == "cosmap":
        bot = 1 - 2 * sigmas + 2 * sigmas**2
        return 2 / (math.pi * bot)
    raise ValueError(f"unknown loss weighting '{scheme}'; use none, sigma_sqrt or cosmap")
