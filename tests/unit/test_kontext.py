"""SD3KontextTransformer: parity with SD3 without a reference, the reference path, save/load, conversion."""

from __future__ import annotations

import pytest
import torch
from diffusers import SD3Transformer2DModel

from unipic.config.model import TransformerConfig
from unipic.models.convert import convert_transformer, load_kontext_transformer
from unipic.models.errors import ModelInputError, ModelLoadError
from unipic.models.factory import build_transformer, count_parameters
from unipic.models.kontext import SD3KontextTransformer

TINY = dict(
    sample_size=8,
    patch_size=2,
    in_channels=4,
    num_layers=2,
    attention_head_dim=16,
    num_attention_heads=2,
    joint_attention_dim=24,
    caption_projection_dim=32,
    pooled_projection_dim=12,
    out_channels=4,
    pos_embed_max_size=8,
    dual_attention_layers=(0,),
    qk_norm="rms_norm",
)


def _inputs(b=2, h=8, w=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        hidden_states=torch.randn(b, 4, h, w, generator=g),
        encoder_hidden_states=torch.randn(b, 5, 24, generator=g),
        pooled_projections=torch.randn(b, 12, generator=g),
        timestep=torch.tensor([100.0, 900.0][:b]),
    )


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    base = SD3Transformer2DModel(**TINY).eval()
    kontext = SD3KontextTransformer(**TINY).eval()
    result = kontext.load_state_dict(base.state_dict(), strict=False)
    assert result.missing_keys == ["ref_type_embed"] and not result.unexpected_keys
    return base, kontext


def test_without_reference_bit_identical_to_sd3(pair):
    base, kontext = pair
    x = _inputs()
    with torch.no_grad():
        a = base(**x).sample
        b = kontext(**x).sample
    assert torch.equal(a, b)


def test_reference_changes_output_and_keeps_target_shape(pair):
    _, kontext = pair
    x = _inputs()
    ref = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        plain = kontext(**x).sample
        with_ref = kontext(**x, ref_latents=ref).sample
        other_ref = kontext(**x, ref_latents=ref.flip(-1)).sample
    assert with_ref.shape == plain.shape == (2, 4, 8, 8)
    assert not torch.allclose(plain, with_ref)
    assert not torch.allclose(with_ref, other_ref)


def test_zero_ref_type_embed_is_official_unipic2_behaviour(pair):
    """With the type embedding at zero, the result equals a model with no type embedding at all."""
    _, kontext = pair
    twin = SD3KontextTransformer(**TINY, use_ref_type_embed=False).eval()
    state = {k: v for k, v in kontext.state_dict().items() if k != "ref_type_embed"}
    twin.load_state_dict(state, strict=True)
    x, ref = _inputs(), torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        assert torch.equal(kontext(**x, ref_latents=ref).sample, twin(**x, ref_latents=ref).sample)
    assert "ref_type_embed" not in twin.state_dict()


def test_reference_of_other_size_within_limit(pair):
    _, kontext = pair
    x = _inputs(b=1, h=8, w=8)
    with torch.no_grad():
        out = kontext(**x, ref_latents=torch.randn(1, 4, 12, 6)).sample
    assert out.shape == (1, 4, 8, 8)


def test_reference_too_large_names_sizes_and_limit(pair):
    _, kontext = pair
    with pytest.raises(ModelInputError, match=r"18x18.*9x9.*pos_embed_max_size=8"):
        kontext(**_inputs(b=1), ref_latents=torch.randn(1, 4, 18, 18))
    with pytest.raises(ModelInputError, match="batch"):
        kontext(**_inputs(b=2), ref_latents=torch.randn(1, 4, 8, 8))
    with pytest.raises(ModelInputError, match="channels|\\(batch, 4"):
        kontext(**_inputs(b=1), ref_latents=torch.randn(1, 3, 8, 8))


def test_backward_reaches_ref_embed_and_gradient_checkpointing_matches():
    torch.manual_seed(0)
    model = SD3KontextTransformer(**TINY)
    x, ref = _inputs(), torch.randn(2, 4, 8, 8)

    def grads():
        model.zero_grad()
        model(**x, ref_latents=ref).sample.square().mean().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain = grads()
    assert plain["ref_type_embed"].abs().sum() > 0
    model.enable_gradient_checkpointing()
    assert model.gradient_checkpointing
    ckpt = grads()
    for name, g in plain.items():
        torch.testing.assert_close(ckpt[name], g, rtol=1e-4, atol=1e-6)


def test_save_load_round_trip(tmp_path, pair):
    _, kontext = pair
    with torch.no_grad():
        kontext.ref_type_embed.fill_(0.25)
    kontext.save_pretrained(tmp_path / "k", safe_serialization=True)
    assert (tmp_path / "k" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = SD3KontextTransformer.from_pretrained(tmp_path / "k").eval()
    assert loaded.config._class_name == "SD3KontextTransformer"
    assert tuple(loaded.config.dual_attention_layers) == (0,)
    x, ref = _inputs(), torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(**x, ref_latents=ref).sample, kontext(**x, ref_latents=ref).sample)
        kontext.ref_type_embed.zero_()


def test_convert_plain_sd3_folder(tmp_path, pair):
    base, _ = pair
    base.save_pretrained(tmp_path / "sd3" / "transformer", safe_serialization=True)
    out = convert_transformer(tmp_path / "sd3", tmp_path / "kontext")
    model = SD3KontextTransformer.from_pretrained(out).eval()
    assert torch.count_nonzero(model.ref_type_embed) == 0
    x = _inputs()
    with torch.no_grad():
        assert torch.equal(model(**x).sample, base(**x).sample)
    with pytest.raises(ModelLoadError, match="not empty"):
        convert_transformer(tmp_path / "sd3", tmp_path / "kontext")


def test_convert_refuses_mismatched_weights(tmp_path):
    from safetensors.torch import load_file, save_file

    torch.manual_seed(0)
    SD3Transformer2DModel(**TINY).save_pretrained(tmp_path / "t", safe_serialization=True)
    weights = tmp_path / "t" / "diffusion_pytorch_model.safetensors"
    state = load_file(weights)
    state.pop("context_embedder.bias")
    state["extra.weight"] = torch.zeros(1)
    save_file(state, weights)
    with pytest.raises(
        ModelLoadError, match=r"missing keys \['context_embedder.bias'\].*unexpected keys \['extra"
    ):
        load_kontext_transformer(tmp_path / "t")
    cfg = tmp_path / "t" / "config.json"
    cfg.write_text(cfg.read_text().replace('"num_layers": 2', '"num_layers": 3'))
    with pytest.raises(ModelLoadError, match="size mismatch|missing keys"):
        load_kontext_transformer(tmp_path / "t")
    with pytest.raises(ModelLoadError, match="holds no transformer"):
        load_kontext_transformer(tmp_path / "nothing")


def test_adaln_zero_init_outputs_zero_and_still_learns():
    model = build_transformer(
        TransformerConfig(sample_size=8, in_channels=12, pos_embed_max_size=8), init="adaln_zero"
    )
    x = dict(
        hidden_states=torch.randn(2, 12, 8, 8),
        encoder_hidden_states=torch.randn(2, 5, 64),
        pooled_projections=torch.randn(2, 64),
        timestep=torch.tensor([10.0, 500.0]),
    )
    out = model(**x).sample
    assert torch.count_nonzero(out) == 0
    (out - 1).square().mean().backward()
    assert model.proj_out.weight.grad.abs().sum() > 0


def test_preset_transformer_sizes():
    from unipic.config import load_config

    ci = count_parameters(build_transformer(load_config("ci").model.transformer))
    smoke = count_parameters(build_transformer(load_config("smoke").model.transformer))
    assert 0.5e6 < ci < 2e6, ci
    assert 7e6 < smoke < 12e6, smoke
