"""UniPicMetaQueryPipeline: T2I, editing with the image routed to both / MLLM / DiT, understanding, save/load."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from PIL import Image

from unipic.config.metaquery import ConnectorConfig, MetaQueryConfig
from unipic.config.model import ModelConfig
from unipic.models.autoencoder import build_autoencoder
from unipic.models.errors import ModelInputError, ModelLoadError
from unipic.models.kontext import SD3KontextTransformer
from unipic.models.metaquery import build_conditioner
from unipic.models.metaquery.mllm import save_mllm
from unipic.pipelines.metaquery import UniPicMetaQueryPipeline, load_pipeline

MQ = MetaQueryConfig(num_queries=4, connector=ConnectorConfig(width=32, depth=1, num_heads=2, mlp_dim=64))


def make_pipeline(mq: MetaQueryConfig = MQ) -> UniPicMetaQueryPipeline:
    mc = ModelConfig()
    torch.manual_seed(0)
    transformer = SD3KontextTransformer(**mc.transformer.diffusers_kwargs())
    cond = build_conditioner(
        mq,
        joint_attention_dim=transformer.config.joint_attention_dim,
        pooled_projection_dim=transformer.config.pooled_projection_dim,
    )
    pipe = UniPicMetaQueryPipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=build_autoencoder(mc.autoencoder),
        mllm=cond.mllm,
        processor=cond.processor,
        connector=cond.connector,
    )
    return pipe.configure(image_to=mq.image_to)


@pytest.fixture(scope="module")
def pipe():
    return make_pipeline()


def _src(colour=(255, 0, 0)) -> Image.Image:
    img = Image.new("RGB", (32, 32), (255, 255, 255))
    img.paste(colour, (8, 8, 20, 20))
    return img


def _run(pipe, prompt="make it blue", image=None, seed=0, **kw) -> torch.Tensor:
    return pipe(
        prompt,
        image=image,
        num_inference_steps=2,
        guidance_scale=2.0,
        output_type="pt",
        generator=torch.Generator().manual_seed(seed),
        **kw,
    ).images


def test_text_to_image_shapes(pipe):
    out = pipe(
        ["a red circle", "a blue square"], num_inference_steps=2, generator=torch.Generator().manual_seed(0)
    )
    assert len(out.images) == 2 and out.images[0].size == (32, 32)


class _Spy:
    """Records what reaches the DiT (reference or not) and the MLLM (images or not)."""

    def __init__(self, pipe, monkeypatch):
        self.ref, self.mllm_images = [], []
        forward, encode = pipe.transformer.forward, pipe.conditioner.encode

        def fwd(*a, **k):
            self.ref.append(k.get("ref_latents") is not None)
            return forward(*a, **k)

        def enc(texts, images=None):
            self.mllm_images.append([im is not None for im in (images or [None] * len(texts))])
            return encode(texts, images)

        monkeypatch.setattr(pipe.transformer, "forward", fwd)
        monkeypatch.setattr(pipe.conditioner, "encode", enc)


@pytest.mark.parametrize(
    "route,to_dit,to_mllm",
    [("both", True, True), ("mllm", False, True), ("dit", True, False), ("none", False, False)],
)
def test_image_route_switch(pipe, monkeypatch, route, to_dit, to_mllm):
    spy = _Spy(pipe, monkeypatch)
    _run(pipe, image=_src(), image_to=route)
    assert set(spy.ref) == {to_dit}
    assert all(all(flags) == to_mllm and any(flags) == to_mllm for flags in spy.mllm_images)
    assert len(spy.mllm_images) == 2  # prompt and negative, both with the same image (text-only guidance)


@torch.no_grad()
def test_edit_depends_on_source_only_through_routed_paths(pipe):
    for route, depends in (("both", True), ("mllm", True), ("dit", True), ("none", False)):
        a = _run(pipe, image=_src((255, 0, 0)), image_to=route)
        b = _run(pipe, image=_src((0, 0, 255)), image_to=route)
        assert ((a - b).abs().max() > 1e-4) == depends, route


def test_bad_route_and_template(pipe):
    with pytest.raises(ModelInputError, match="image_to"):
        _run(pipe, image=_src(), image_to="vae")
    with pytest.raises(ModelInputError, match="{prompt}"):
        make_pipeline().configure(t2i_template="no placeholder")


def test_understand_answers_strings(pipe):
    answers = pipe.understand(_src(), ["What colour is the square?", "How many shapes?"], max_new_tokens=4)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)


@torch.no_grad()
def test_save_load_round_trip(tmp_path):
    pipe = make_pipeline().configure(image_to="dit")
    pipe.save_pretrained(tmp_path / "mq")
    index = json.loads((tmp_path / "mq" / "model_index.json").read_text())
    assert index["_class_name"] == "UniPicMetaQueryPipeline"
    assert {"mllm", "processor", "connector", "transformer", "vae", "scheduler"} <= set(index)
    again = load_pipeline(tmp_path / "mq")
    assert type(again) is UniPicMetaQueryPipeline and again.image_to == "dit"
    torch.testing.assert_close(_run(again, image=_src()), _run(pipe, image=_src()))
    torch.testing.assert_close(_run(again, "a red circle"), _run(pipe, "a red circle"))


@torch.no_grad()
def test_mllm_saved_as_reference(tmp_path):
    pipe = make_pipeline()
    save_mllm(pipe.mllm, pipe.processor, tmp_path / "qwen")
    pipe.mllm_source = str(tmp_path / "qwen")
    pipe.save_pretrained(tmp_path / "mq")
    assert sorted(p.name for p in (tmp_path / "mq" / "mllm").iterdir()) == ["reference.json"]
    again = UniPicMetaQueryPipeline.from_pretrained(tmp_path / "mq")
    torch.testing.assert_close(_run(again, image=_src()), _run(pipe, image=_src()))


def test_load_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="model_index.json"):
        load_pipeline(tmp_path)
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusion3Pipeline"}))
    with pytest.raises(ModelLoadError, match="StableDiffusion3Pipeline"):
        load_pipeline(tmp_path)
