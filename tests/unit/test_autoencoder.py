"""The autoencoder slot: lossless pixel-unshuffle, the AutoencoderKL path, SD3's shift/scale convention."""

from __future__ import annotations

import pytest
import torch

from unipic.config.model import AutoencoderConfig
from unipic.models.autoencoder import (
    PixelUnshuffleAutoencoder,
    build_autoencoder,
    decode_latents,
    downsample_factor,
    encode_latents,
    latent_channels,
)
from unipic.models.errors import ModelInputError


@pytest.mark.parametrize("r,size", [(2, 32), (4, 64)])
def test_pixel_unshuffle_is_lossless(r, size):
    vae = PixelUnshuffleAutoencoder(factor=r)
    x = torch.rand(2, 3, size, size) * 2 - 1
    z = vae.encode(x).latent_dist.sample()
    assert z.shape == (2, 3 * r * r, size // r, size // r)
    assert torch.equal(vae.decode(z).sample, x)
    assert torch.equal(vae.encode(x).latent_dist.mode(), z)


def test_pixel_unshuffle_latent_layout_is_local():
    """Latent pixel (i, j) holds exactly the r x r block of image pixels it covers."""
    vae = PixelUnshuffleAutoencoder(factor=2)
    x = torch.zeros(1, 3, 4, 4)
    x[0, 1, 2:4, 0:2] = 1.0
    z = vae.encode(x).latent_dist.mode()
    assert z[0, :, 1, 0].sum() == 4 and z.sum() == 4


def test_shift_scale_round_trip_and_values():
    vae = PixelUnshuffleAutoencoder(factor=2, scaling_factor=2.0, shift_factor=0.5)
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    lat = encode_latents(vae, x)
    torch.testing.assert_close(lat, (torch.nn.functional.pixel_unshuffle(x, 2) - 0.5) * 2.0)
    torch.testing.assert_close(decode_latents(vae, lat), x)


def test_save_load_round_trip(tmp_path):
    vae = PixelUnshuffleAutoencoder(factor=4, scaling_factor=1.5)
    vae.save_pretrained(tmp_path / "vae", safe_serialization=True)
    loaded = PixelUnshuffleAutoencoder.from_pretrained(tmp_path / "vae")
    assert loaded.config.factor == 4 and loaded.config.scaling_factor == 1.5
    assert downsample_factor(loaded) == 4 and latent_channels(loaded) == 48


def test_bad_input_is_refused():
    vae = PixelUnshuffleAutoencoder(factor=4)
    with pytest.raises(ModelInputError, match="multiple of the factor 4"):
        vae.encode(torch.zeros(1, 3, 30, 32))
    with pytest.raises(ModelInputError, match="48"):
        vae.decode(torch.zeros(1, 12, 8, 8))


def test_autoencoder_kl_path(tmp_path):
    """The base preset's kind: a tiny AutoencoderKL through the same helpers, saved and reloaded."""
    cfg = AutoencoderConfig(
        kind="kl",
        latent_channels=4,
        block_out_channels=[8, 16],
        norm_num_groups=4,
        scaling_factor=1.5305,
        shift_factor=0.0609,
    )
    torch.manual_seed(0)
    vae = build_autoencoder(cfg).eval()
    assert downsample_factor(vae) == cfg.downsample == 2 and latent_channels(vae) == cfg.channels == 4
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        lat = encode_latents(vae, x)
        mode = vae.encode(x).latent_dist.mode()
        torch.testing.assert_close(lat, (mode - 0.0609) * 1.5305)
        g = torch.Generator().manual_seed(0)
        sampled = encode_latents(vae, x, generator=g, sample=True)
        assert not torch.allclose(sampled, lat)
        out = decode_latents(vae, lat)
    assert out.shape == x.shape
    vae.save_pretrained(tmp_path / "kl", safe_serialization=True)
    from diffusers import AutoencoderKL

    again = AutoencoderKL.from_pretrained(tmp_path / "kl").eval()
    with torch.no_grad():
        torch.testing.assert_close(decode_latents(again, lat), out)
