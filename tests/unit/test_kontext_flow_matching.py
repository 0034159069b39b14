"""Flow-matching utilities: SD3 conventions, agreement with diffusers' scheduler."""

from __future__ import annotations

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from unipic.diffusion import (
    add_noise,
    euler_step,
    flow_sigmas,
    loss_weighting,
    predict_x0,
    resolution_mu,
    sample_sigmas,
    shift_sigmas,
    sigma_to_timestep,
    time_shift,
    velocity_target,
)


@pytest.mark.parametrize("steps,shift", [(1, 3.0), (4, 3.0), (20, 1.0), (10, 5.0)])
def test_flow_sigmas_match_scheduler(steps, shift):
    s = FlowMatchEulerDiscreteScheduler(shift=shift)
    s.set_timesteps(steps)
    torch.testing.assert_close(flow_sigmas(steps, shift), s.sigmas, rtol=0, atol=1e-6)
    torch.testing.assert_close(
        sigma_to_timestep(flow_sigmas(steps, shift)[:-1]), s.timesteps, rtol=0, atol=1e-3
    )


def test_dynamic_shift_matches_scheduler():
    s = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)
    mu = resolution_mu(1024)
    s.set_timesteps(8, mu=mu)
    torch.testing.assert_close(flow_sigmas(8, mu=mu), s.sigmas, rtol=0, atol=1e-6)
    assert resolution_mu(256) == pytest.approx(0.5) and resolution_mu(4096) == pytest.approx(1.15)


def test_euler_step_matches_scheduler_step():
    s = FlowMatchEulerDiscreteScheduler(shift=3.0)
    s.set_timesteps(5)
    x, v = torch.randn(2, 4, 6, 6), torch.randn(2, 4, 6, 6)
    ours = euler_step(x, v, s.sigmas[1], s.sigmas[2])
    s._step_index = 1
    theirs = s.step(v, s.timesteps[1], x).prev_sample
    torch.testing.assert_close(ours, theirs)


def test_noising_target_and_x0_are_consistent():
    x0, eps = torch.randn(3, 2, 4, 4), torch.randn(3, 2, 4, 4)
    t = torch.tensor([0.0, 0.3, 1.0])
    xt = add_noise(x0, eps, t)
    torch.testing.assert_close(xt[0], x0[0])
    torch.testing.assert_close(xt[2], eps[2])
    v = velocity_target(x0, eps)
    torch.testing.assert_close(predict_x0(xt, v, t), x0)
    # Integrating the exact velocity from t=1 to 0 in one Euler step lands on x0 (straight paths).
    torch.testing.assert_close(euler_step(eps, v, 1.0, 0.0), x0)


def test_sample_sigmas_distribution_and_rng():
    g = torch.Generator().manual_seed(0)
    t = sample_sigmas(20000, "logit_normal", generator=g)
    assert 0 < t.min() and t.max() < 1
    assert abs(t.median().item() - 0.5) < 0.02
    again = sample_sigmas(20000, "logit_normal", generator=torch.Generator().manual_seed(0))
    assert torch.equal(t, again)
    shifted = sample_sigmas(20000, "logit_normal", shift=3.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(shifted, shift_sigmas(t, 3.0))
    assert shifted.mean() > t.mean()
    by_res = sample_sigmas(20000, mu=resolution_mu(4096), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(by_res, time_shift(resolution_mu(4096), t))
    assert by_res.mean() > t.mean()
    with pytest.raises(ValueError, match="not both"):
        sample_sigmas(2, shift=3.0, mu=0.5)
    u = sample_sigmas(20000, "uniform", generator=g)
    assert abs(u.mean().item() - 0.5) < 0.02
    m = sample_sigmas(1000, "mode", generator=g)
    assert 0 < m.min() and m.max() < 1
    with pytest.raises(ValueError, match="unknown timestep sampling"):
        sample_sigmas(2, "bogus")  # type: ignore[arg-type]


def test_loss_weighting():
    s = torch.tensor([0.25, 0.5])
    assert torch.equal(loss_weighting(s), torch.ones(2))
    torch.testing.assert_close(loss_weighting(s, "sigma_sqrt"), torch.tensor([16.0, 4.0]))
    assert loss_weighting(s, "cosmap")[1] > loss_weighting(s, "cosmap")[0]
