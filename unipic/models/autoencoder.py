"""The image autoencoder slot: a lossless pixel-unshuffle "VAE" for small images, or a real AutoencoderKL.

Both expose the AutoencoderKL surface a pipeline touches: `encode(x).latent_dist.sample()/.mode()`,
`decode(z).sample`, `config.scaling_factor`, `config.shift_factor`. The helpers `encode_latents` /
`decode_latents` apply SD3's `(z - shift) * scale` convention for either kind, and are what the pipeline,
the trainer and RL use, so nothing else needs to know which autoencoder it holds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin

from unipic.config.model import AutoencoderConfig
from unipic.models.errors import ModelInputError


class ExactLatent:
    """A point-mass "posterior": `sample()` and `mode()` both return the latent (no noise drawn)."""

    def __init__(self, latents: torch.Tensor):
        self.latents = latents

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.latents

    def mode(self) -> torch.Tensor:
        return self.latents


class PixelUnshuffleAutoencoder(ModelMixin, ConfigMixin):
    """Lossless space-to-depth: (B, 3, H, W) in [-1, 1] -> (B, 3*r*r, H/r, W/r), and back.

    No parameters, so it needs no training, and decode(encode(x)) == x exactly; at 32-64 px it yields the same
    token count as a VAE for free (notes/shapesworld_learnability.md §2). A dummy buffer keeps ModelMixin's
    device/dtype bookkeeping and save_pretrained working; it holds no information.
    """

    @register_to_config
    def __init__(
        self,
        factor: int = 2,
        image_channels: int = 3,
        scaling_factor: float = 1.0,
        shift_factor: float = 0.0,
    ):
        super().__init__()
        self.register_buffer("_anchor", torch.zeros(1), persistent=True)

    @property
    def latent_channels(self) -> int:
        return self.config.image_channels * self.config.factor**2

    def encode(self, x: torch.Tensor, return_dict: bool = True) -> AutoencoderKLOutput | tuple[ExactLatent]:
        r = self.config.factor
        if x.ndim != 4 or x.shape[1] != self.config.image_channels:
            raise ModelInputError(
                f"expected images (B, {self.config.image_channels}, H, W), got {tuple(x.shape)}"
            )
        if x.shape[-2] % r or x.shape[-1] % r:
            raise ModelInputError(
                f"image size {x.shape[-2]}x{x.shape[-1]} is not a multiple of the factor {r}"
            )
        dist = ExactLatent(F.pixel_unshuffle(x, r))
        return AutoencoderKLOutput(latent_dist=dist) if return_dict else (dist,)

    def decode(
        self, z: torch.Tensor, return_dict: bool = True, generator=None
    ) -> DecoderOutput | tuple[torch.Tensor]:
        if z.ndim != 4 or z.shape[1] != self.latent_channels:
            raise ModelInputError(f"expected latents (B, {self.latent_channels}, h, w), got {tuple(z.shape)}")
        x = F.pixel_shuffle(z, self.config.factor)
        return DecoderOutput(sample=x) if return_dict else (x,)


def build_autoencoder(cfg: AutoencoderConfig) -> PixelUnshuffleAutoencoder | AutoencoderKL:
    """A fresh autoencoder from config: pixel-unshuffle, or a random-init AutoencoderKL (tests, bootstrap)."""
    if cfg.kind == "pixel_unshuffle":
        return PixelUnshuffleAutoencoder(
            factor=cfg.factor,
            image_channels=cfg.image_channels,
            scaling_factor=cfg.scaling_factor,
            shift_factor=cfg.shift_factor,
        )
    n = len(cfg.block_out_channels)
    return AutoencoderKL(
        in_channels=cfg.image_channels,
        out_channels=cfg.image_channels,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(cfg.block_out_channels),
        layers_per_block=cfg.layers_per_block,
        latent_channels=cfg.latent_channels,
        norm_num_groups=cfg.norm_num_groups,
        scaling_factor=cfg.scaling_factor,
        shift_factor=cfg.shift_factor,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


def downsample_factor(vae) -> int:
    """Pixels per latent pixel along a side."""
    if isinstance(vae, PixelUnshuffleAutoencoder):
        return vae.config.factor
    return 2 ** (len(vae.config.block_out_channels) - 1)


def latent_channels(vae) -> int:
    if isinstance(vae, PixelUnshuffleAutoencoder):
        return vae.latent_channels
    return vae.config.latent_channels


def encode_latents(
    vae, pixels: torch.Tensor, generator: torch.Generator | None = None, sample: bool = False
) -> torch.Tensor:
    """Images in [-1, 1] -> the DiT's latents `(z - shift) * scale`.

    `sample=False` takes the posterior mode (deterministic); UniPic2 samples the posterior for references.
    For pixel-unshuffle both are the same exact latent.
    """
    dist = vae.encode(pixels.to(device=vae.device, dtype=vae.dtype)).latent_dist
    z = dist.sample(generator=generator) if sample else dist.mode()
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    return (z - shift) * vae.config.scaling_factor


def decode_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """The DiT's latents -> images in [-1, 1] (not clamped)."""
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    z = latents / vae.config.scaling_factor + shift
    return vae.decode(z.to(device=vae.device, dtype=vae.dtype)).sample
