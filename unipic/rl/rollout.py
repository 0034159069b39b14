"""Rollouts: G SDE samples per condition, with CFG, storing what the PPO update needs.

Each rollout chunk keeps the whole latent chain x_0..x_T (x_0 = noise), the per-step old log-probs, the sigma
schedule and the conditioning exactly as it was fed to the model, so that the update recomputes log-probs on the
same batch shape (the ratio is then exactly 1 on the first minibatch). For editing the source image's latents
are the reference of every step, in both CFG branches.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from PIL import Image

from unipic.rl.sde import sde_step_with_logprob


class RolloutPipeline(Protocol):
    """The part of `UniPicKontextPipeline` a rollout uses."""

    def encode_prompt(self, prompts: list[str], do_cfg: bool) -> Any: ...

    def encode_image(self, images: list[Image.Image]) -> torch.Tensor: ...

    def decode_latents(self, latents: torch.Tensor) -> Any: ...

    def predict_velocity(self, latents: torch.Tensor, t: torch.Tensor, embeds: Any, pooled: Any,
                         ref_latents: torch.Tensor | None, guidance_scale: float) -> torch.Tensor: ...


@dataclass
class Condition:
    """One group's condition: a caption (T2I) or an instruction with its source image (editing)."""

    prompt: str
    source: Image.Image | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    key: Hashable | None = None
    """Group key for advantages; defaults to the prompt (T2I) or (instruction, source id) (editing)."""

    def group_key(self) -> Hashable:
        if self.key is not None:
            return self.key
        if self.source is None:
            return self.prompt
        return (self.prompt, self.meta.get("sample_id") or self.source.tobytes())


@dataclass
class RolloutChunk:
    """One batch of rollouts, also the training minibatch."""

    conditions: list[Condition]
    keys: list[Hashable]
    embeds: Any
    pooled: Any
    ref_latents: torch.Tensor | None
    latents: torch.Tensor
    """(B, T+1, *latent_shape): x at every sigma of the schedule, noise first."""
    log_probs: torch.Tensor
    """(B, T) old log-probs (mean over latent elements) of each transition."""
    sigmas: torch.Tensor
    """(T+1,) from 1 down to 0."""
    images: list[Image.Image] = field(default_factory=list)

    def __len__(self) -> int:
        return self.latents.shape[0]


def rollout_sigmas(pipe: Any, num_steps: int) -> torch.Tensor:
    """The pipeline scheduler's inference sigmas (T+1 values, 1 -> 0), as `pipe(...)` would sample with."""
    c, h, w = pipe.latent_shape
    p = pipe.transformer.config.patch_size
    return pipe.sigma_schedule(num_steps, (h // p) * (w // p)).detach().float().cpu().clone()


def model_time(pipe: Any, sigma: torch.Tensor, batch: int) -> torch.Tensor:
    """The `t` argument the pipeline expects for a given sigma, broadcast to the batch."""
    from unipic.diffusion.flow_matching import sigma_to_timestep

    return sigma_to_timestep(sigma).to(torch.float32).expand(batch)


def expand_conditions(conditions: Sequence[Condition], group_size: int) -> list[Condition]:
    """G copies of each condition, kept adjacent so a group never straddles two prompts' order."""
    return [c for c in conditions for _ in range(group_size)]


def _images_to_pil(decoded: Any) -> list[Image.Image]:
    from unipic.rl.rewards.base import to_pil

    return to_pil(decoded if isinstance(decoded, torch.Tensor) else list(decoded))


@torch.no_grad()
def rollout_chunk(
    pipe: RolloutPipeline,
    conditions: list[Condition],
    *,
    sigmas: torch.Tensor,
    noise_level: float,
    guidance_scale: float,
    generator: torch.Generator | None = None,
    latent_shape: Sequence[int] | None = None,
    decode: bool = True,
) -> RolloutChunk:
    """Sample one batch of trajectories with the SDE sampler (a = `noise_level`) under CFG."""
    prompts = [c.prompt for c in conditions]
    do_cfg = guidance_scale > 1.0
    embeds, pooled = _split_encoded(pipe.encode_prompt(prompts, do_cfg))
    sources = [c.source for c in conditions]
    editing = any(s is not None for s in sources)
    if editing and any(s is None for s in sources):
        raise ValueError("a rollout chunk mixes editing and text-to-image conditions; keep them in separate stages")
    ref_latents = pipe.encode_image(sources) if editing else None  # type: ignore[arg-type]
    shape = tuple(latent_shape) if latent_shape is not None else tuple(ref_latents.shape[1:]) if editing \
        else tuple(pipe.latent_shape)  # type: ignore[attr-defined]
    b = len(conditions)
    device = embeds.device if isinstance(embeds, torch.Tensor) else torch.device("cpu")
    x = torch.randn((b, *shape), generator=generator, dtype=torch.float32).to(device)
    chain = [x]
    log_probs = []
    for i in range(len(sigmas) - 1):
        v = pipe.predict_velocity(x, model_time(pipe, sigmas[i], b), embeds, pooled, ref_latents, guidance_scale)
        step = sde_step_with_logprob(v, x, sigmas[i], sigmas[i + 1], noise_level=noise_level, generator=generator)
        x = step.prev_sample
        chain.append(x)
        log_probs.append(step.log_prob if step.log_prob is not None else torch.zeros(b, device=device))
    images = _images_to_pil(pipe.decode_latents(x)) if decode else []
    return RolloutChunk(
        conditions=list(conditions), keys=[c.group_key() for c in conditions], embeds=embeds, pooled=pooled,
        ref_latents=ref_latents, latents=torch.stack(chain, dim=1), log_probs=torch.stack(log_probs, dim=1),
        sigmas=sigmas.clone(), images=images,
    )


def _split_encoded(encoded: Any) -> tuple[Any, Any]:
    if isinstance(encoded, tuple) and len(encoded) == 2:
        return encoded[0], encoded[1]
    if isinstance(encoded, dict):
        return encoded.get("embeds", encoded.get("prompt_embeds")), encoded.get("pooled", encoded.get("pooled_prompt_embeds"))
    return encoded, None


def rollout_round(
    pipe: RolloutPipeline,
    conditions: Sequence[Condition],
    *,
    group_size: int,
    batch_size: int,
    sigmas: torch.Tensor,
    noise_level: float,
    guidance_scale: float,
    generator: torch.Generator | None = None,
    latent_shape: Sequence[int] | None = None,
) -> list[RolloutChunk]:
    """G samples for every condition, in chunks of `batch_size` (whole groups per chunk when it divides)."""
    expanded = expand_conditions(conditions, group_size)
    if len(expanded) % batch_size:
        raise ValueError(f"{len(expanded)} rollouts per round is not a multiple of the batch size {batch_size}")
    return [
        rollout_chunk(pipe, expanded[i:i + batch_size], sigmas=sigmas, noise_level=noise_level,
                      guidance_scale=guidance_scale, generator=generator, latent_shape=latent_shape)
        for i in range(0, len(expanded), batch_size)
    ]
