"""Flow-matching utilities shared by training, RL and the pipeline (convention: flow_matching.py)."""

from unipic.diffusion.flow_matching import (
    NUM_TRAIN_TIMESTEPS,
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

__all__ = [
    "NUM_TRAIN_TIMESTEPS",
    "add_noise",
    "euler_step",
    "flow_sigmas",
    "loss_weighting",
    "predict_x0",
    "resolution_mu",
    "sample_sigmas",
    "shift_sigmas",
    "sigma_to_timestep",
    "time_shift",
    "velocity_target",
]
