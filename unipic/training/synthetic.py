"""A flow-matching trainer on random latents and text embeddings, for speed and memory benchmarks.

It runs the same base `Trainer` loop and the same rectified-flow step as `PretrainTrainer`, but needs no
dataset, text encoders or autoencoder: only a transformer config. That is how the full-size SD3.5-M
architecture is measured on a GPU (benchmarks/gpu_pretrain_step.py) and a width-1536 slice on the CPU
(benchmarks/pretrain_mfu.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from unipic.config.train import TrainerConfig
from unipic.training.trainer import StepOutput, Trainer


class RandomLatents:
    """Batch i is a pure function of (seed, i): latents, text embeddings, pooled, optional reference."""

    def __init__(self, model_config: Any, batch_size: int, latent_side: int, text_tokens: int, edit: bool,
                 device: torch.device, seed: int = 0):
        self.c, self.b, self.side, self.text, self.edit = model_config, batch_size, latent_side, text_tokens, edit
        self.device, self.seed, self.index = device, seed, 0

    def __next__(self) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.index)
        self.index += 1
        c, b = self.c, self.b
        shape = (b, c.in_channels, self.side, self.side)
        out = {"x0": torch.randn(shape, generator=g), "embeds": torch.randn(b, self.text, c.joint_attention_dim,
                                                                            generator=g),
               "pooled": torch.randn(b, c.pooled_projection_dim, generator=g)}
        if self.edit:
            out["ref"] = torch.randn(shape, generator=g)
        return {k: v.to(self.device) for k, v in out.items()}

    def state_dict(self) -> dict[str, int]:
        return {"index": self.index}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.index = state["index"]


class SyntheticFlowTrainer(Trainer):
    section = "synthetic"

    def __init__(self, cfg: TrainerConfig, model: torch.nn.Module, work_dir: Path, *, latent_side: int,
                 text_tokens: int, edit: bool = False):
        device = next(model.parameters()).device
        data = RandomLatents(model.config, cfg.batch_size, latent_side, text_tokens, edit, device, cfg.seed)
        self.latent_side, self.text_tokens, self.edit = latent_side, text_tokens, edit
        super().__init__(cfg, model, data, work_dir)

    @property
    def image_tokens(self) -> int:
        p = self.model.config.patch_size
        return (self.latent_side // p) ** 2 * (2 if self.edit else 1)

    def forward_backward_step(self, batch: dict[str, torch.Tensor]) -> StepOutput:
        from unipic.diffusion import add_noise, sample_sigmas, sigma_to_timestep, velocity_target

        x0 = batch["x0"]
        n = x0.shape[0]
        sigmas = sample_sigmas(n, "logit_normal", generator=self.generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=self.generator).to(x0.device)
        with self.autocast():
            pred = self.forward_model(hidden_states=add_noise(x0, noise, sigmas), encoder_hidden_states=batch["embeds"],
                                      pooled_projections=batch["pooled"], timestep=sigma_to_timestep(sigmas),
                                      ref_latents=batch.get("ref"), return_dict=False)[0]
        loss = F.mse_loss(pred.float(), velocity_target(x0, noise))
        self.backward(loss)
        return StepOutput(loss=loss.detach(), tokens=n * self.image_tokens, samples=n)
