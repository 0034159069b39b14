"""ServingClient: retries only what is safe, surfaces the server's message, speaks V1 and V2."""

import base64
import io
import json

import httpx
import PIL.Image
import pytest

from unipic.config.serve import ClientConfig
from unipic.errors import ServiceError
from unipic.serving.client import ServingClient, ServingRequestError, save_result, split_endpoint

CFG = ClientConfig(timeout_s=5, retries=2, backoff_s=0.0)


def png_b64(color=(1, 2, 3)):
    buf = io.BytesIO()
    PIL.Image.new("RGB", (8, 8), color).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def scripted(*responses):
    """A transport that answers with `responses` in order (an Exception is raised instead) and records requests."""
    seen = []

    def handler(request):
        seen.append(request)
        r = responses[min(len(seen) - 1, len(responses) - 1)]
        if isinstance(r, Exception):
            raise r
        return r

    return httpx.MockTransport(handler), seen


V1_OK = httpx.Response(
    200,
    json={
        "predictions": [
            {"images": [png_b64()], "seeds": [4], "model_version": "v9", "timings": {"total_ms": 3.0}}
        ]
    },
)


def test_v1_generate_decodes_images():
    transport, seen = scripted(V1_OK)
    res = ServingClient("http://h:1", "unipic", cfg=CFG, transport=transport).generate(
        "a circle", seed=4, steps=2
    )
    assert res.seeds == [4] and res.model_version == "v9" and res.images[0].size == (8, 8)
    sent = json.loads(seen[0].content)
    assert seen[0].url.path == "/v1/models/unipic:predict"
    assert sent == {
        "instances": [{"prompt": "a circle", "task": "t2i", "steps": 2, "seed": 4, "num_images": 1}]
    }


def test_v2_request_shape_and_response():
    transport, seen = scripted(
        httpx.Response(
            200,
            json={
                "model_name": "m",
                "model_version": "v2x",
                "id": "1",
                "parameters": {"total_ms": 5.0},
                "outputs": [
                    {"name": "images", "shape": [1], "datatype": "BYTES", "data": [png_b64()]},
                    {"name": "seeds", "shape": [1], "datatype": "INT64", "data": [8]},
                ],
            },
        )
    )
    client = ServingClient("http://h:1/v2/models/m/infer", protocol="v2", cfg=CFG, transport=transport)
    res = client.edit("make it red", PIL.Image.new("RGB", (8, 8)), seed=8, guidance=2.5)
    body = json.loads(seen[0].content)
    kinds = {i["name"]: i["datatype"] for i in body["inputs"]}
    assert seen[0].url.path == "/v2/models/m/infer"
    assert kinds == {
        "prompt": "BYTES",
        "task": "BYTES",
        "image": "BYTES",
        "guidance": "FP64",
        "seed": "INT64",
        "num_images": "INT64",
    }
    assert res.seeds == [8] and res.model_version == "v2x" and res.timings == {"total_ms": 5.0}


def test_retries_503_and_connection_errors_then_succeeds():
    transport, seen = scripted(
        httpx.ConnectError("refused"), httpx.Response(503, json={"error": "warming"}), V1_OK
    )
    res = ServingClient("http://h:1", "unipic", cfg=CFG, transport=transport).generate("p")
    assert len(seen) == 3 and res.seeds == [4]


def test_gives_up_after_retries_with_a_hint():
    transport, seen = scripted(httpx.Response(503, json={"error": "warming"}))
    with pytest.raises(ServiceError, match="3 attempts"):
        ServingClient("http://h:1", "unipic", cfg=CFG, transport=transport).generate("p")
    assert len(seen) == 3


def test_4xx_is_not_retried_and_carries_the_servers_message():
    transport, seen = scripted(httpx.Response(422, json={"error": "steps=99 is outside 1..20 (max_steps)"}))
    with pytest.raises(ServingRequestError, match="max_steps") as info:
        ServingClient("http://h:1", "unipic", cfg=CFG, transport=transport).generate("p", steps=99)
    assert info.value.status == 422 and len(seen) == 1


def test_read_timeout_is_not_retried():
    transport, seen = scripted(httpx.ReadTimeout("slow"))
    with pytest.raises(ServiceError, match="not retried"):
        ServingClient("http://h:1", "unipic", cfg=CFG, transport=transport).generate("p")
    assert len(seen) == 1


def test_split_endpoint_and_save(tmp_path):
    assert split_endpoint("http://h:8080/v1/models/abc:predict", None) == ("http://h:8080", "abc")
    assert split_endpoint("http://h:8080/", "x") == ("http://h:8080", "x")
    transport, _ = scripted(V1_OK)
    res = ServingClient("http://h:1", "unipic", cfg=CFG, transport=transport).generate("p")
    paths = save_result(res, tmp_path / "out")
    assert [p.name for p in paths] == ["image-4.png"] and PIL.Image.open(paths[0]).size == (8, 8)


def test_model_name_is_discovered_when_the_server_has_one():
    def handler(request):
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"models": ["itest"]})
        assert request.url.path == "/v1/models/itest:predict"
        return V1_OK

    client = ServingClient("http://h:1", cfg=CFG, transport=httpx.MockTransport(handler))
    assert client.generate("p").seeds == [4] and client.model_name == "itest"
