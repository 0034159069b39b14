"""UniPicKontextPipeline on a tiny random model: shapes, determinism, batches, editing, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from unipic.config.model import ModelConfig
from unipic.models.errors import ModelInputError, ModelLoadError
from unipic.models.factory import build_pipeline
from unipic.pipelines import PromptEncoding, UniPicKontextPipeline

STEPS = 3


def tiny_model_config(**kw) -> ModelConfig:
    return ModelConfig(init="diffusers", text=dict(clip_max_length=16, t5_max_length=8), **kw)


@pytest.fixture(scope="module")
def pipe() -> UniPicKontextPipeline:
    return build_pipeline(tiny_model_config())


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _source(color="red") -> Image.Image:
    im = Image.new("RGB", (32, 32), "white")
    im.paste(Image.new("RGB", (10, 10), color), (5, 8))
    return im


def test_t2i_output_types_and_shapes(pipe):
    pt = pipe(
        ["a red circle", "a blue square"], num_inference_steps=STEPS, generator=_gen(0), output_type="pt"
    ).images
    assert pt.shape == (2, 3, 32, 32) and pt.dtype == torch.float32
    assert 0.0 <= pt.min() and pt.max() <= 1.0
    arr = pipe("a red circle", num_inference_steps=STEPS, generator=_gen(0), output_type="np").images
    assert arr.shape == (1, 32, 32, 3) and arr.dtype == np.float32
    pil = pipe("a red circle", num_inference_steps=STEPS, generator=_gen(0), num_images_per_prompt=2).images
    assert len(pil) == 2 and pil[0].size == (32, 32)
    np.testing.assert_allclose(np.asarray(pil[0]) / 255.0, arr[0], atol=1 / 255 + 1e-6)
    lat = pipe("a red circle", num_inference_steps=STEPS, output_type="latent").images
    assert lat.shape == (1, 12, 16, 16)


def test_fixed_seed_is_deterministic_and_seeds_differ(pipe):
    a = pipe("a red circle", num_inference_steps=STEPS, generator=_gen(1), output_type="pt").images
    b = pipe("a red circle", num_inference_steps=STEPS, generator=_gen(1), output_type="pt").images
    c = pipe("a red circle", num_inference_steps=STEPS, generator=_gen(2), output_type="pt").images
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_batch_independence(pipe):
    """Image i of a batch equals the image made alone with the same generator."""
    batch = pipe(
        ["a red circle", "a blue square"],
        num_inference_steps=STEPS,
        generator=[_gen(3), _gen(4)],
        output_type="pt",
    ).images
    alone = pipe(["a blue square"], num_inference_steps=STEPS, generator=[_gen(4)], output_type="pt").images
    torch.testing.assert_close(batch[1], alone[0], rtol=0, atol=1e-5)


def test_guidance_and_prompt_matter(pipe):
    kw = dict(num_inference_steps=STEPS, output_type="pt")
    g1 = pipe("a red circle", guidance_scale=1.0, generator=_gen(5), **kw).images
    g4 = pipe("a red circle", guidance_scale=4.0, generator=_gen(5), **kw).images
    other = pipe("a green star", guidance_scale=4.0, generator=_gen(5), **kw).images
    assert not torch.allclose(g1, g4)
    assert not torch.allclose(g4, other)


def test_edit_uses_the_reference(pipe):
    kw = dict(num_inference_steps=STEPS, output_type="pt", guidance_scale=3.0)
    red = pipe("make the square blue", image=_source("red"), generator=_gen(6), **kw).images
    red2 = pipe("make the square blue", image=_source("red"), generator=_gen(6), **kw).images
    green = pipe("make the square blue", image=_source("green"), generator=_gen(6), **kw).images
    t2i = pipe("make the square blue", generator=_gen(6), **kw).images
    assert torch.equal(red, red2)
    assert (red - green).abs().max() > 1e-3
    assert (red - t2i).abs().max() > 1e-3
    ig = pipe(
        "make the square blue", image=_source("red"), generator=_gen(6), image_guidance_scale=1.5, **kw
    ).images
    assert (ig - red).abs().max() > 1e-4


def test_edit_batch_with_one_source_per_instruction(pipe):
    out = pipe(
        ["make it blue", "make it green"],
        image=[_source("red"), _source("blue")],
        num_inference_steps=STEPS,
        generator=_gen(7),
        output_type="pt",
        num_images_per_prompt=2,
    ).images
    assert out.shape == (4, 3, 32, 32)
    with pytest.raises(ModelInputError, match="3 source images for 2 instructions"):
        pipe(["a", "b"], image=[_source()] * 3, num_inference_steps=1)


def test_size_validation_names_the_limit(pipe):
    out = pipe("a red circle", height=16, width=64, num_inference_steps=1, output_type="pt").images
    assert out.shape == (1, 3, 16, 64)
    with pytest.raises(ModelInputError, match="multiple of 4"):
        pipe("a red circle", height=30, num_inference_steps=1)
    with pytest.raises(ModelInputError, match="over 64 px"):
        pipe("a red circle", height=68, width=32, num_inference_steps=1)


def test_pieces_for_rl(pipe):
    enc = pipe.encode_prompt(["a red circle", "a blue square"], do_cfg=True)
    assert isinstance(enc, PromptEncoding)
    embeds, pooled, neg_embeds, neg_pooled = enc
    assert embeds.shape == neg_embeds.shape == (2, 16 + 8, 64) and pooled.shape == (2, 64)
    torch.testing.assert_close(neg_embeds[0], neg_embeds[1])  # the empty prompt, twice
    src = [_source("red"), _source("blue")]
    ref = pipe.encode_image(src)
    assert ref.shape == (2, 12, 16, 16)
    decoded = pipe.decode_latents(ref)
    assert decoded.shape == (2, 3, 32, 32)
    expected = torch.from_numpy(np.stack([np.asarray(s) for s in src])).permute(0, 3, 1, 2) / 255.0
    torch.testing.assert_close(decoded, expected, rtol=0, atol=1e-6)  # pixel-unshuffle is lossless
    x = torch.randn(2, *pipe.latent_shape, generator=_gen(0))
    t = torch.full((2,), 700.0)
    with torch.no_grad():
        v_whole = pipe.predict_velocity(x, t, enc, None, ref, 4.0)
        v_parts = pipe.predict_velocity(x, t, embeds, pooled, ref, 4.0, neg_embeds, neg_pooled)
        v_cond = pipe.velocity(x, t, embeds, pooled, ref)
        v_unc = pipe.velocity(x, t, neg_embeds, neg_pooled, ref)
    torch.testing.assert_close(v_whole, v_parts)
    torch.testing.assert_close(v_parts, v_unc + 4.0 * (v_cond - v_unc), rtol=1e-5, atol=1e-5)
    with pytest.raises(ModelInputError, match="unconditional"):
        pipe.predict_velocity(x, t, embeds, pooled, ref, 4.0)


def test_save_and_load_full_pipeline(tmp_path, pipe):
    pipe.save_pretrained(tmp_path / "p", safe_serialization=True)
    assert not list((tmp_path / "p").rglob("*.bin"))
    loaded = UniPicKontextPipeline.from_pretrained(tmp_path / "p")
    assert type(loaded.transformer).__name__ == "SD3KontextTransformer"
    assert type(loaded.vae).__name__ == "PixelUnshuffleAutoencoder"
    kw = dict(num_inference_steps=STEPS, output_type="pt", guidance_scale=3.0)
    a = pipe("make it blue", image=_source(), generator=_gen(8), **kw).images
    b = loaded("make it blue", image=_source(), generator=_gen(8), **kw).images
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    with pytest.raises(ModelLoadError, match="model_index.json"):
        UniPicKontextPipeline.from_pretrained(tmp_path / "missing")


def test_pipeline_with_autoencoder_kl_and_without_t5():
    """The base preset's shape of pipeline (AutoencoderKL, 8x down) at toy width; T5 slot left empty."""
    cfg = ModelConfig(
        init="diffusers",
        image_size=32,
        transformer=dict(sample_size=4, in_channels=4, out_channels=4, pos_embed_max_size=8),
        autoencoder=dict(
            kind="kl",
            latent_channels=4,
            block_out_channels=[8, 8, 8, 8],
            norm_num_groups=4,
            scaling_factor=1.5305,
            shift_factor=0.0609,
        ),
        text=dict(use_t5=False, clip_max_length=16, t5_max_length=8),
    )
    p = build_pipeline(cfg)
    assert p.vae_scale_factor == 8 and p.size_multiple == 16
    out = p(
        "make it blue", image=_source(), num_inference_steps=2, generator=_gen(0), output_type="pt"
    ).images
    assert out.shape == (1, 3, 32, 32)


def test_loads_a_stock_sd3_pipeline_folder(tmp_path):
    """The base path: a stock StableDiffusion3Pipeline folder (plain SD3 DiT, AutoencoderKL) loads."""
    from diffusers import AutoencoderKL, SD3Transformer2DModel, StableDiffusion3Pipeline

    cfg = tiny_model_config(
        image_size=32,
        autoencoder=dict(
            kind="kl",
            latent_channels=4,
            block_out_channels=[8, 8],
            norm_num_groups=4,
            scaling_factor=1.5305,
            shift_factor=0.0609,
        ),
        transformer=dict(sample_size=16, in_channels=4, pos_embed_max_size=16),
    )
    ours = build_pipeline(cfg)
    torch.manual_seed(0)
    plain = SD3Transformer2DModel(
        **{
            k: v
            for k, v in ours.transformer.config.items()
            if not k.startswith("_") and k != "use_ref_type_embed"
        }
    )
    stock = StableDiffusion3Pipeline(
        transformer=plain,
        scheduler=ours.scheduler,
        vae=ours.vae,
        **{
            k: getattr(ours, k)
            for k in (
                "text_encoder",
                "tokenizer",
                "text_encoder_2",
                "tokenizer_2",
                "text_encoder_3",
                "tokenizer_3",
            )
        },
    )
    stock.save_pretrained(tmp_path / "sd3", safe_serialization=True)
    loaded = UniPicKontextPipeline.from_pretrained(tmp_path / "sd3")
    assert isinstance(loaded.vae, AutoencoderKL)
    assert type(loaded.transformer).__name__ == "SD3KontextTransformer"
    assert torch.count_nonzero(loaded.transformer.ref_type_embed) == 0
    x = torch.randn(1, 4, 16, 16)
    emb, pooled, _, _ = loaded.encode_prompt(["a red circle"], do_cfg=False)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.velocity(x, 500.0, emb, pooled),
            plain(x, emb, pooled, torch.tensor([500.0])).sample,
            rtol=0,
            atol=0,
        )
    out = loaded("make it blue", image=_source(), num_inference_steps=2, output_type="pt").images
    assert out.shape == (1, 3, 32, 32)
