"""The SDE step: the ODE limit, the Gaussian log-density, fp32 maths and the KL formula."""

from __future__ import annotations

import math

import pytest
import torch

from unipic.diffusion.flow_matching import euler_step
from unipic.rl.sde import gaussian_log_prob_mean, kl_to_reference, noise_std, sde_step_with_logprob


def _xv(seed: int = 0, shape=(3, 4, 6, 6)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


@pytest.mark.parametrize("sigma,sigma_next", [(1.0, 0.9), (0.55, 0.4), (0.1, 0.0)])
def test_a0_is_euler_ode_step(sigma, sigma_next):
    x, v = _xv()
    step = sde_step_with_logprob(v, x, sigma, sigma_next, noise_level=0.0)
    torch.testing.assert_close(step.prev_sample, euler_step(x, v, sigma, sigma_next), rtol=0, atol=0)
    assert step.log_prob is None


def test_small_a_approaches_ode_mean():
    x, v = _xv(1)
    ode = x + v * (0.3 - 0.5)
    step = sde_step_with_logprob(v, x, 0.5, 0.3, noise_level=1e-4)
    assert (step.mean - ode).abs().max() < 1e-6


def test_log_prob_matches_gaussian_density():
    x, v = _xv(2)
    sigma, sigma_next, a = 0.7, 0.6, 0.7
    step = sde_step_with_logprob(v, x, sigma, sigma_next, noise_level=a, generator=torch.Generator().manual_seed(3))
    s = a * math.sqrt(sigma / (1 - sigma))
    std = s * math.sqrt(sigma - sigma_next)
    dt = sigma_next - sigma
    mean = x * (1 + s**2 / (2 * sigma) * dt) + v * (1 + s**2 * (1 - sigma) / (2 * sigma)) * dt
    torch.testing.assert_close(step.mean, mean, rtol=1e-6, atol=1e-6)
    dist = torch.distributions.Normal(mean.double(), std)
    expected = dist.log_prob(step.prev_sample.double()).mean(dim=(1, 2, 3)).float()
    torch.testing.assert_close(step.log_prob, expected, rtol=1e-5, atol=1e-5)
    # the drawn sample really has the step's spread
    z = (step.prev_sample - mean) / std
    assert abs(float(z.std()) - 1.0) < 0.1 and abs(float(z.mean())) < 0.1


def test_rescoring_a_stored_transition_gives_the_same_log_prob():
    x, v = _xv(4)
    first = sde_step_with_logprob(v, x, 0.8, 0.7, generator=torch.Generator().manual_seed(0))
    again = sde_step_with_logprob(v, x, 0.8, 0.7, prev_sample=first.prev_sample)
    assert torch.equal(first.log_prob, again.log_prob)


def test_sigma_one_uses_sigma_max_and_stays_finite():
    x, v = _xv(5)
    step = sde_step_with_logprob(v, x, 1.0, 0.9, noise_level=0.7)
    assert torch.isfinite(step.prev_sample).all() and torch.isfinite(step.log_prob).all()
    expected = 0.7 * math.sqrt(1.0 / (1 - 0.9))
    assert float(step.std.flatten()[0]) == pytest.approx(expected, rel=1e-6)
    assert float(noise_std(torch.tensor(1.0), 0.7, 0.8)) == pytest.approx(0.7 * math.sqrt(1 / 0.2), rel=1e-6)


def test_bf16_inputs_are_computed_in_fp32():
    x, v = _xv(6)
    step = sde_step_with_logprob(v.bfloat16(), x.bfloat16(), 0.5, 0.4, generator=torch.Generator().manual_seed(0))
    assert step.prev_sample.dtype == torch.float32 and step.log_prob.dtype == torch.float32


def test_per_sample_sigmas_and_wrong_direction():
    x, v = _xv(7)
    sig = torch.tensor([0.9, 0.5, 0.2])
    step = sde_step_with_logprob(v, x, sig, sig - 0.1, prev_sample=x)
    assert step.log_prob.shape == (3,)
    with pytest.raises(ValueError, match="smaller"):
        sde_step_with_logprob(v, x, 0.4, 0.5)


def test_kl_formula_and_zero_at_equal_means():
    mean = torch.randn(2, 3, 4, 4)
    std = torch.full((2, 1, 1, 1), 0.5)
    assert torch.equal(kl_to_reference(mean, mean, std), torch.zeros(2))
    kl = kl_to_reference(mean + 0.1, mean, std)
    torch.testing.assert_close(kl, torch.full((2,), 0.01 / (2 * 0.25)))


def test_gaussian_log_prob_mean_is_a_mean_not_a_sum():
    x = torch.zeros(1, 2, 8, 8)
    lp = gaussian_log_prob_mean(x, x, torch.tensor(1.0))
    assert float(lp) == pytest.approx(-0.5 * math.log(2 * math.pi))
