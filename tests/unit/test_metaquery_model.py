"""MetaQuery model parts: processor without torchvision, query injection, connector, freezing, save/load."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from unipic.config import load_config
from unipic.config.metaquery import ConnectorConfig, MetaQueryConfig, MLLMConfig
from unipic.errors import ConfigError
from unipic.models.metaquery import (
    MetaQueryConnector,
    MetaQueryProcessor,
    build_conditioner,
    build_connector,
    load_mllm,
    meta_reference_mllm,
)
from unipic.models.metaquery.mllm import build_tiny_mllm, save_mllm

CFG = MetaQueryConfig(num_queries=4, connector=ConnectorConfig(width=32, depth=1, num_heads=2, mlp_dim=64))


@pytest.fixture(scope="module")
def conditioner():
    return build_conditioner(CFG, joint_attention_dim=48, pooled_projection_dim=24)


def _img(colour: tuple[int, int, int], size: int = 32) -> Image.Image:
    return Image.new("RGB", (size, size), colour)


def test_processor_layout(conditioner):
    proc = conditioner.processor
    inp = proc(
        ["Generate an image: a red circle", "make the circle blue, please, right now"],
        [None, _img((255, 0, 0))],
        num_queries=4,
    )
    # left padding: every row ends with the 4 query slots, masks agree
    assert inp.query_mask[:, -4:].all() and inp.query_mask.sum() == 8
    assert (inp.input_ids[inp.query_mask] == proc.query_token_id).all()
    assert inp.attention_mask[:, -1].all() and not inp.attention_mask[0, 0]
    # 56 px -> 4x4 patches of 14 -> 2x2 merged = 4 image tokens, typed 1 for mRoPE
    assert inp.image_grid_thw.tolist() == [[1, 4, 4]]
    assert int(inp.mm_token_type_ids[1].sum()) == 4
    assert int((inp.input_ids[1] == proc.image_token_id).sum()) == 4
    assert int(inp.mm_token_type_ids[0].sum()) == 0


def test_processor_unipic2_size_rule_and_bad_size():
    proc = MetaQueryProcessor(build_tiny_mllm(MLLMConfig(), 0)[1].tokenizer, image_size=None)
    assert proc.mllm_size(512, 384) == (448, 336)  # x 28/32, so a quarter of the DiT's tokens
    with pytest.raises(ConfigError, match="multiple of 28"):
        MetaQueryProcessor(proc.tokenizer, image_size=50)


def test_only_queries_and_connector_train(conditioner):
    conditioner.zero_grad(set_to_none=True)
    emb, pooled = conditioner.encode(["Generate an image: a red circle"], [None])
    assert emb.shape == (1, 4, 48) and pooled.shape == (1, 24)
    (emb.square().mean() + pooled.square().mean()).backward()
    assert (
        conditioner.connector.queries.grad is not None and conditioner.connector.queries.grad.abs().sum() > 0
    )
    assert not any(p.requires_grad for p in conditioner.mllm.parameters())
    trainable = {n.split(".")[0] for n, p in conditioner.named_parameters() if p.requires_grad}
    assert trainable == {"connector"}


@torch.no_grad()
def test_batch_rows_are_independent_and_padding_invariant(conditioner):
    a, pa = conditioner.encode(["a red circle"], [_img((255, 0, 0))])
    b, pb = conditioner.encode(
        ["a red circle", "Generate an image: two green triangles left of a blue square"],
        [_img((255, 0, 0)), None],
    )
    torch.testing.assert_close(a[0], b[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(pa[0], pb[0], atol=1e-5, rtol=1e-4)
    c, _ = conditioner.encode(
        ["a red circle", "Generate an image: two green triangles left of a blue square"],
        [_img((0, 0, 255)), None],
    )
    assert (c[0] - b[0]).abs().max() > 1e-3  # the image reaches the queries
    torch.testing.assert_close(c[1], b[1], atol=1e-5, rtol=1e-4)


def test_connector_round_trip(tmp_path):
    conn = build_connector(
        ConnectorConfig(width=32, depth=2, num_heads=4, mlp_dim=64),
        mllm_hidden_size=64,
        num_queries=3,
        joint_attention_dim=40,
        pooled_projection_dim=20,
    )
    conn.save_pretrained(tmp_path / "connector")
    again = MetaQueryConnector.from_pretrained(tmp_path / "connector")
    x = torch.randn(2, 3, 64)
    torch.testing.assert_close(again(x)[0], conn(x)[0])
    torch.testing.assert_close(again.queries, conn.queries)
    assert sorted(p.name for p in (tmp_path / "connector").iterdir()) == [
        "config.json",
        "diffusion_pytorch_model.safetensors",
    ]


@torch.no_grad()
def test_load_mllm_from_hf_folder(tmp_path, conditioner):
    save_mllm(conditioner.mllm, conditioner.processor, tmp_path / "qwen")
    mllm, proc = load_mllm(tmp_path / "qwen", num_queries=4, image_size=56)
    assert not any(p.requires_grad for p in mllm.parameters())
    assert (
        proc.tokenizer("a red circle")["input_ids"]
        == conditioner.processor.tokenizer("a red circle")["input_ids"]
    )
    from unipic.models.metaquery import MetaQueryConditioner

    again = MetaQueryConditioner(mllm, proc, conditioner.connector)
    args = (["change it to blue"], [_img((255, 0, 0))])
    torch.testing.assert_close(again.encode(*args)[0], conditioner.encode(*args)[0])


def test_missing_mllm_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_mllm(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="config.json"):
        load_mllm(tmp_path / "empty")


@torch.no_grad()
def test_understanding_is_plain_qwen_generate(conditioner):
    img = _img((0, 255, 0))
    answer = conditioner.answer(["What shape is this?"], [img], max_new_tokens=5)
    inp = conditioner.processor(["What shape is this?"], [img], num_queries=0)
    ref = conditioner.mllm.generate(
        input_ids=inp.input_ids,
        attention_mask=inp.attention_mask,
        mm_token_type_ids=inp.mm_token_type_ids,
        pixel_values=inp.pixel_values,
        image_grid_thw=inp.image_grid_thw,
        max_new_tokens=5,
        do_sample=False,
    )
    tok = conditioner.processor.tokenizer
    assert answer == [tok.decode(ref[0, inp.input_ids.shape[1] :], skip_special_tokens=True)]
    assert isinstance(answer[0], str)


def test_base_preset_shapes_on_meta_device():
    cfg = load_config("base").metaquery
    assert cfg.num_queries == 256 and cfg.connector.depth == 24 and cfg.mllm.pretrained.startswith("s3://")
    mllm = meta_reference_mllm()
    assert mllm.config.text_config.hidden_size == cfg.mllm.hidden_size == 3584
    n_mllm = sum(p.numel() for p in mllm.parameters())
    assert 8.2e9 < n_mllm < 8.4e9  # Qwen2.5-VL-7B: 8.29 B with the vision tower
    with torch.device("meta"):
        conn = build_connector(
            cfg.connector,
            mllm_hidden_size=3584,
            num_queries=256,
            joint_attention_dim=4096,
            pooled_projection_dim=2048,
        )
        emb, pooled = conn(torch.empty(2, 256, 3584))
    assert emb.shape == (2, 256, 4096) and pooled.shape == (2, 2048)
    n_conn = sum(p.numel() for p in conn.parameters())
    assert 0.8e9 < n_conn < 1.1e9  # "24-layer, ~1B" (notes/unipic2.md §4)
    assert conn.queries.shape == (256, 3584)
