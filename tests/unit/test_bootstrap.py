"""bootstrap_base_model: the SD3 folder layout, safetensors only, deterministic in the seed, loadable."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from unipic.config import load_config
from unipic.models.bootstrap import bootstrap_base_model, read_model_card
from unipic.models.errors import ModelError
from unipic.pipelines import UniPicKontextPipeline

LAYOUT = {
    "transformer",
    "vae",
    "text_encoder",
    "text_encoder_2",
    "text_encoder_3",
    "tokenizer",
    "tokenizer_2",
    "tokenizer_3",
    "scheduler",
}


@pytest.fixture(scope="module")
def ci_model():
    return load_config("ci").model


@pytest.fixture(scope="module")
def boot(tmp_path_factory, ci_model):
    return bootstrap_base_model(ci_model, tmp_path_factory.mktemp("b") / "model")


def test_layout_and_safetensors_only(boot, ci_model):
    index = json.loads((boot / "model_index.json").read_text())
    assert index["_class_name"] == "UniPicKontextPipeline"
    assert LAYOUT <= {p.name for p in boot.iterdir() if p.is_dir()}
    assert index["transformer"] == ["unipic.models.kontext", "SD3KontextTransformer"]
    assert not [p for p in boot.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl")]
    assert (boot / "transformer" / "diffusion_pytorch_model.safetensors").is_file()
    sched = json.loads((boot / "scheduler" / "scheduler_config.json").read_text())
    assert (
        sched["_class_name"] == "FlowMatchEulerDiscreteScheduler"
        and sched["shift"] == ci_model.scheduler_shift
    )
    card = read_model_card(boot)
    assert card["kind"] == "bootstrap" and card["model"]["transformer"]["num_layers"] == 2
    assert not list(boot.parent.glob(".model.tmp-*"))


def test_deterministic_in_seed(tmp_path, boot, ci_model):
    again = bootstrap_base_model(ci_model, tmp_path / "again")
    other = bootstrap_base_model(ci_model.model_copy(update={"seed": 1}), tmp_path / "other")
    for sub in ("transformer", "text_encoder", "text_encoder_3"):
        name = "diffusion_pytorch_model.safetensors" if sub == "transformer" else "model.safetensors"
        a, b, c = (load_file(d / sub / name) for d in (boot, again, other))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert any(not torch.equal(a[k], c[k]) for k in a if a[k].abs().sum() > 0)
    assert (boot / "tokenizer" / "tokenizer.json").read_text() == (
        again / "tokenizer" / "tokenizer.json"
    ).read_text()


def test_refuses_to_overwrite(boot, ci_model):
    with pytest.raises(ModelError, match="not empty"):
        bootstrap_base_model(ci_model, boot)


def test_loads_and_generates(boot, ci_model):
    pipe = UniPicKontextPipeline.from_pretrained(boot)
    assert (
        sum(p.numel() for p in pipe.transformer.parameters()) == read_model_card(boot)["transformer_params"]
    )
    out = pipe(
        "a red circle", num_inference_steps=2, output_type="pt", generator=torch.Generator().manual_seed(0)
    )
    assert out.images.shape == (1, 3, ci_model.image_size, ci_model.image_size)
