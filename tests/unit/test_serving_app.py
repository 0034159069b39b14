"""The predictor behind KServe's V1/V2 routes, in process (no port): readiness, protocols, errors, metrics, fuzz.

`EchoPipeline` stands in for the model, so these run in seconds; tests/integration/test_serving_server.py runs the
same paths against a real tiny model over loopback.
"""

import asyncio
import base64
import io
import json
import os

import httpx
import numpy as np
import PIL.Image
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from unipic.config.serve import BatchingConfig, LimitsConfig, ServeConfig
from unipic.serving.predictor import UniPicPredictor
from unipic.serving.server import build_app
from unipic.serving.testing import EchoPipeline


def make(understands=False, batching=None, limits=None, load=True, **kw):
    cfg = ServeConfig(
        warmup=False,
        batching=batching or BatchingConfig(max_wait_ms=20),
        limits=limits
        or LimitsConfig(
            max_side=64, max_steps=20, max_images=4, max_image_bytes=100_000, max_payload_bytes=300_000
        ),
        **kw,
    )
    model = UniPicPredictor("unipic", None, cfg, pipeline=EchoPipeline(understands=understands))
    if load:
        model.load()
    return model, build_app(model, cfg)


def b64png(w=32, h=32, color=(10, 200, 30)):
    buf = io.BytesIO()
    PIL.Image.new("RGB", (w, h), color).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def decode(b64):
    return np.asarray(PIL.Image.open(io.BytesIO(base64.b64decode(b64))))


def test_not_ready_until_loaded_then_ready():
    model, app = make(load=False)
    with TestClient(app) as c:
        assert c.get("/v2/health/live").status_code == 200
        assert c.get("/v2/health/ready").status_code == 503
        assert c.get("/v2/models/unipic/ready").status_code == 503
        r = c.post("/v1/models/unipic:predict", json={"instances": [{"prompt": "p"}]})
        assert r.status_code == 503
        model.load()
        assert c.get("/v2/health/ready").json() == {"ready": True}
        assert c.get("/v2/models/unipic/ready").status_code == 200


def test_warmup_runs_before_ready():
    cfg = ServeConfig(warmup=True)
    pipe = EchoPipeline()
    model = UniPicPredictor("unipic", None, cfg, pipeline=pipe)
    assert not model.ready and not pipe.calls
    model.load()
    assert model.ready and pipe.calls[0]["steps"] == 1


def test_v1_generate_fields_and_seeds_are_reproducible():
    _, app = make()
    with TestClient(app) as c:
        body = {"instances": [{"prompt": "a red circle", "seed": 11, "num_images": 2, "steps": 3}]}
        a = c.post("/v1/models/unipic:predict", json=body).json()
        b = c.post("/v1/models/unipic:predict", json=body).json()
    pred = a["predictions"][0]
    assert pred["seeds"] == [11, 12] and pred["seed"] == 11 and pred["steps"] == 3
    assert pred["model_version"] == "in-memory" and set(pred["timings"]) >= {
        "queue_ms",
        "inference_ms",
        "total_ms",
    }
    assert decode(pred["images"][0]).shape == (32, 32, 3)
    assert pred["images"] == b["predictions"][0]["images"]
    assert pred["images"][0] != pred["images"][1]


def test_v2_edit_and_response_id():
    model, app = make()
    src = b64png(40, 40)
    with TestClient(app) as c:
        r = c.post(
            "/v2/models/unipic/infer",
            json={
                "id": "req-1",
                "inputs": [
                    {"name": "instruction", "shape": [1], "datatype": "BYTES", "data": ["make it blue"]},
                    {"name": "image", "shape": [1], "datatype": "BYTES", "data": [src]},
                    {"name": "width", "shape": [1], "datatype": "INT32", "data": [32]},
                    {"name": "height", "shape": [1], "datatype": "INT32", "data": [32]},
                    {"name": "seed", "shape": [1], "datatype": "INT64", "data": [5]},
                ],
            },
        )
        no_id = c.post(
            "/v2/models/unipic/infer",
            json={"inputs": [{"name": "prompt", "shape": [1], "datatype": "BYTES", "data": ["p"]}]},
        )
    assert r.status_code == 200, r.text
    res = r.json()
    outs = {o["name"]: o for o in res["outputs"]}
    assert res["id"] == "req-1" and outs["seeds"]["data"] == [5] and res["parameters"]["task"] == "edit"
    assert [c["edit"] for c in model.pipe.calls] == [True, False]
    assert no_id.status_code == 200 and no_id.json()["id"]


def test_understanding_only_for_models_that_understand():
    _, app = make(understands=True)
    with TestClient(app) as c:
        r = c.post(
            "/v1/models/unipic:predict",
            json={"instances": [{"question": "what is it?", "task": "understand", "image": b64png()}]},
        )
        assert r.json()["predictions"][0]["text"].startswith("image: what")
    _, plain = make()
    with TestClient(plain) as c:
        r = c.post("/v1/models/unipic:predict", json={"instances": [{"question": "q", "task": "understand"}]})
        assert r.status_code == 422 and "MetaQuery" in r.json()["error"]


def test_errors_are_4xx_with_messages_and_server_survives():
    _, app = make()
    with TestClient(app, raise_server_exceptions=False) as c:
        cases = [
            (
                c.post("/v1/models/unipic:predict", json={"instances": [{"prompt": "p", "steps": 99}]}),
                422,
                "max_steps",
            ),
            (
                c.post("/v1/models/unipic:predict", json={"instances": [{"prompt": "p", "image": "%%%"}]}),
                400,
                "base64",
            ),
            (
                c.post(
                    "/v1/models/unipic:predict",
                    content=b"{nope",
                    headers={"content-type": "application/json"},
                ),
                400,
                "format",
            ),
            (c.post("/v1/models/unipic:predict", content=b"x" * 400_000), 413, "max_payload_bytes"),
            (c.post("/v1/models/nobody:predict", json={"instances": [{"prompt": "p"}]}), 404, "nobody"),
            (c.post("/v2/models/unipic/infer", json={"inputs": "nope"}), 422, None),
        ]
        for resp, status, words in cases:
            assert resp.status_code == status, resp.text
            if words:
                assert words in resp.text
        assert c.post("/v2/repository/models/unipic/unload").status_code in (404, 405)
        assert c.get("/v2/health/ready").status_code == 200


def test_model_failure_is_500_and_the_next_request_works():
    cfg = ServeConfig(warmup=False)
    model = UniPicPredictor("unipic", None, cfg, pipeline=EchoPipeline(fail_on="boom"))
    model.load()
    with TestClient(build_app(model, cfg), raise_server_exceptions=False) as c:
        assert (
            c.post("/v1/models/unipic:predict", json={"instances": [{"prompt": "boom"}]}).status_code == 500
        )
        assert c.post("/v1/models/unipic:predict", json={"instances": [{"prompt": "ok"}]}).status_code == 200


def test_concurrent_requests_are_batched_without_changing_images():
    async def run(model, app, n):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            rs = await asyncio.gather(
                *(
                    c.post(
                        "/v1/models/unipic:predict",
                        json={"instances": [{"prompt": f"circle {i}", "seed": i}]},
                    )
                    for i in range(n)
                )
            )
        return [r.json()["predictions"][0] for r in rs]

    batched_model, batched_app = make(batching=BatchingConfig(max_batch_images=8, max_wait_ms=100))
    single_model, single_app = make(batching=BatchingConfig(enabled=False))
    batched = asyncio.run(run(batched_model, batched_app, 8))
    single = asyncio.run(run(single_model, single_app, 8))
    assert max(p["timings"]["batch_images"] for p in batched) > 1
    assert len(batched_model.pipe.calls) < 8 and len(single_model.pipe.calls) == 8
    assert [p["images"] for p in batched] == [p["images"] for p in single]


def test_metrics_report_latency_queue_and_batch_size():
    _, app = make()
    with TestClient(app) as c:
        c.post("/v1/models/unipic:predict", json={"instances": [{"prompt": "p", "num_images": 3}]})
        text = c.get("/metrics").text
    for name in (
        "unipic_serve_request_seconds_bucket",
        "unipic_serve_queue_depth",
        "unipic_serve_batch_images_sum",
        "request_predict_seconds",
    ):
        assert name in text
    assert any(
        line.startswith('unipic_serve_instances_total{model_name="unipic",outcome="ok"}')
        for line in text.splitlines()
    )


# --- fuzz: the JSON API never answers 5xx and never goes down ---------------------------------------------------
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from([b64png(), "", "AAAA", b64png(8, 8)[:40]]),
)
field_names = st.sampled_from(
    [
        "prompt",
        "instruction",
        "question",
        "image",
        "task",
        "steps",
        "guidance",
        "width",
        "height",
        "seed",
        "num_images",
        "max_new_tokens",
        "num_inference_steps",
        "junk",
    ]
)
instance = st.one_of(
    st.dictionaries(field_names, scalars, max_size=6), scalars, st.lists(scalars, max_size=2)
)
v1_body = st.one_of(
    st.fixed_dictionaries({"instances": st.lists(instance, max_size=3)}),
    st.dictionaries(st.sampled_from(["instances", "parameters", "x"]), instance, max_size=2),
    instance,
)
v2_input = st.fixed_dictionaries(
    {
        "name": field_names,
        "shape": st.lists(st.integers(-2, 3), max_size=2),
        "datatype": st.sampled_from(
            ["BYTES", "INT32", "INT64", "FP32", "FP64", "BOOL", "UINT8", "FP16", "XX"]
        ),
        "data": st.lists(scalars, max_size=3),
    }
)
v2_body = st.one_of(
    st.fixed_dictionaries(
        {"inputs": st.lists(v2_input, max_size=4)},
        optional={"id": st.text(max_size=5), "parameters": st.dictionaries(field_names, scalars, max_size=3)},
    ),
    instance,
)


@settings(
    max_examples=int(os.environ.get("UNIPIC_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    st.one_of(
        st.tuples(st.just("v1"), v1_body),
        st.tuples(st.just("v2"), v2_body),
        st.tuples(st.just("raw"), st.binary(max_size=200)),
    )
)
def test_fuzz_json_api_never_5xx(fuzz_client, case):
    kind, body = case
    if kind == "raw":
        r = fuzz_client.post(
            "/v1/models/unipic:predict", content=body, headers={"content-type": "application/json"}
        )
    else:
        url = "/v1/models/unipic:predict" if kind == "v1" else "/v2/models/unipic/infer"
        r = fuzz_client.post(url, content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code < 500, (body, r.status_code, r.text[:300])


@pytest.fixture(scope="module")
def fuzz_client():
    _, app = make(understands=True)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
        assert c.get("/v2/health/ready").status_code == 200


def test_v2_json_without_content_type_is_read_as_json():
    """tritonclient's pure-JSON requests carry no Content-Type; KServe alone would answer 400."""
    _, app = make()
    body = json.dumps(
        {"inputs": [{"name": "prompt", "shape": [1], "datatype": "BYTES", "data": ["p"]}]}
    ).encode()

    async def post():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            req = c.build_request("POST", "/v2/models/unipic/infer", content=body)
            assert "content-type" not in req.headers
            return await c.send(req)

    r = asyncio.run(post())
    assert r.status_code == 200, r.text


def test_streamed_body_over_the_limit_is_413_without_content_length():
    _, app = make()

    async def post():
        async def chunks():
            for _ in range(4):
                yield b" " * 100_000

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            req = c.build_request(
                "POST",
                "/v1/models/unipic:predict",
                content=chunks(),
                headers={"content-type": "application/json"},
            )
            assert "content-length" not in req.headers
            return await c.send(req)

    r = asyncio.run(post())
    assert r.status_code == 413 and "max_payload_bytes=300000" in r.json()["error"]


def test_v2_model_metadata_lists_the_tensors():
    _, app = make(understands=True)
    with TestClient(app) as c:
        meta = c.get("/v2/models/unipic").json()
    names = {i["name"]: i["datatype"] for i in meta["inputs"]}
    assert names["prompt"] == "BYTES" and names["seed"] == "INT64" and "max_new_tokens" in names
    assert [o["name"] for o in meta["outputs"]] == ["images", "seeds", "text"]
