"""A MetaQuery model folder served in process: text-to-image, editing and understanding over V1 and V2."""

import base64
import io

import PIL.Image
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from starlette.testclient import TestClient

from unipic.config.metaquery import ConnectorConfig, MetaQueryConfig
from unipic.config.model import ModelConfig
from unipic.config.serve import ServeConfig
from unipic.serving.predictor import UniPicPredictor
from unipic.serving.server import build_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mq_dir(tmp_path_factory):
    from unipic.models.autoencoder import build_autoencoder
    from unipic.models.kontext import SD3KontextTransformer
    from unipic.models.metaquery import build_conditioner
    from unipic.pipelines.metaquery import UniPicMetaQueryPipeline

    mq = MetaQueryConfig(num_queries=4, connector=ConnectorConfig(width=32, depth=1, num_heads=2, mlp_dim=64))
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
    ).configure(image_to=mq.image_to)
    out = tmp_path_factory.mktemp("mq") / "model"
    pipe.save_pretrained(out, mllm_reference=False)
    return out


def b64(img):
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_metaquery_folder_serves_all_three_tasks(mq_dir):
    cfg = ServeConfig(warmup=True)
    model = UniPicPredictor("mq", str(mq_dir), cfg)
    assert model.load() and model.geometry.can_understand
    src = b64(PIL.Image.new("RGB", (32, 32), (255, 0, 0)))
    with TestClient(build_app(model, cfg)) as c:
        t2i = c.post(
            "/v1/models/mq:predict", json={"instances": [{"prompt": "a red circle", "steps": 2, "seed": 3}]}
        )
        assert t2i.status_code == 200, t2i.text
        assert t2i.json()["predictions"][0]["seeds"] == [3]
        edit = c.post(
            "/v1/models/mq:predict",
            json={"instances": [{"instruction": "make it blue", "image": src, "steps": 2}]},
        )
        assert edit.status_code == 200 and edit.json()["predictions"][0]["task"] == "edit"
        und = c.post(
            "/v2/models/mq/infer",
            json={
                "inputs": [
                    {"name": "question", "shape": [1], "datatype": "BYTES", "data": ["what colour is it?"]},
                    {"name": "image", "shape": [1], "datatype": "BYTES", "data": [src]},
                    {"name": "task", "shape": [1], "datatype": "BYTES", "data": ["understand"]},
                    {"name": "max_new_tokens", "shape": [1], "datatype": "INT32", "data": [4]},
                ]
            },
        )
        assert und.status_code == 200, und.text
        outs = {o["name"]: o for o in und.json()["outputs"]}
        assert isinstance(outs["text"]["data"][0], str) and und.json()["parameters"]["task"] == "understand"
