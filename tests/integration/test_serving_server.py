"""The model server as users meet it: a detached process on 127.0.0.1 serving a real tiny model (ci preset).

One server for the module: V1 + V2 through our client, tritonclient's V2 HTTP client (not ours), concurrency with
zero errors, metrics, a bounded fuzz run with zero 5xx, and an s3:// model served from SeaweedFS.
"""

import base64
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import PIL.Image
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unipic.config import load_config
from unipic.services.process import is_alive
from unipic.serving.client import ServingClient, ServingRequestError
from unipic.serving.schemas import parse_instance
from unipic.serving.server import read_record, start_detached, stop_detached
from unipic.serving.testing import tiny_model

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("serve") / "model")


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    state = tmp_path_factory.mktemp("serve-state")
    sets = [f"serve.state_dir={state}", "serve.port=0", "serve.model_name=itest"]
    cfg = load_config("ci", sets).serve
    rec = start_detached(str(model_dir), cfg, "ci", sets)
    yield rec
    assert stop_detached(state, "itest") in ("terminated", "killed")
    assert not is_alive(rec.pid) and read_record(state, "itest") is None


def test_binds_loopback_only(server):
    import psutil

    proc = psutil.Process(server.pid)
    conns = (
        proc.net_connections(kind="inet")
        if hasattr(proc, "net_connections")
        else proc.connections(kind="inet")
    )
    listening = [c.laddr for c in conns if c.status == "LISTEN"]
    assert listening and all(addr.ip == "127.0.0.1" for addr in listening)
    assert server.url.startswith("http://127.0.0.1:")


def test_v1_and_v2_agree_and_edit_works(server):
    with ServingClient(server.url, "itest") as v1, ServingClient(server.url, "itest", "v2") as v2:
        a = v1.generate("a red circle", seed=7, steps=2, num_images=2)
        b = v2.generate("a red circle", seed=7, steps=2, num_images=2)
        assert a.seeds == b.seeds == [7, 8] and a.model_version == b.model_version == server.model_version
        assert [im.tobytes() for im in a.images] == [im.tobytes() for im in b.images]
        assert a.images[0].tobytes() != a.images[1].tobytes()
        e = v1.edit("make it blue", a.images[0], seed=1, steps=2)
        assert e.images[0].size == (32, 32) and e.timings["total_ms"] > 0
        with pytest.raises(ServingRequestError, match="max_side=64"):
            v1.generate("p", width=128)


def test_tritonclient_v2_http_client(server):
    tc = pytest.importorskip("tritonclient.http")
    client = tc.InferenceServerClient(url=server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_model_ready("itest")
    meta = client.get_model_metadata("itest")
    assert {"prompt", "seed", "steps"} <= {i["name"] for i in meta["inputs"]}
    for binary in (False, True):
        prompt = tc.InferInput("prompt", [1], "BYTES")
        prompt.set_data_from_numpy(np.array([b"a blue square"], dtype=object), binary_data=binary)
        seed = tc.InferInput("seed", [1], "INT64")
        seed.set_data_from_numpy(np.array([3], dtype=np.int64), binary_data=binary)
        steps = tc.InferInput("steps", [1], "INT32")
        steps.set_data_from_numpy(np.array([2], dtype=np.int32), binary_data=binary)
        res = client.infer(
            "itest",
            [prompt, seed, steps],
            outputs=[
                tc.InferRequestedOutput("images", binary_data=False),
                tc.InferRequestedOutput("seeds", binary_data=False),
            ],
        )
        images = res.as_numpy("images")
        png = base64.b64decode(images[0] if isinstance(images[0], (bytes, str)) else images.reshape(-1)[0])
        assert PIL.Image.open(io.BytesIO(png)).size == (32, 32)
        assert list(res.as_numpy("seeds")) == [3]
        assert res.get_response()["parameters"]["model_version"] == server.model_version
    client.close()


def test_concurrent_load_has_zero_errors_and_batches(server):
    def one(i):
        with ServingClient(server.url, "itest") as c:
            return c.generate(f"shape {i % 3}", seed=i, steps=2)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(24)))
    assert len(results) == 24 and all(len(r.images) == 1 for r in results)
    assert max(r.timings["batch_images"] for r in results) > 1
    metrics = httpx.get(f"{server.url}/metrics").text
    batches = [
        l for l in metrics.splitlines() if l.startswith('unipic_serve_batch_images_count{model_name="itest"}')
    ]
    assert (
        batches and float(batches[0].split()[-1]) < 24 + 10
    )  # fewer model calls than requests (+warm-up/others)


fields = st.sampled_from(
    ["prompt", "image", "task", "steps", "guidance", "width", "height", "seed", "num_images", "bogus"]
)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, width=32),
    st.text(max_size=20),
    st.sampled_from(["AAAA", "iVBORw0KGgo=", "t2i", "edit", "understand"]),
)


@settings(
    max_examples=int(os.environ.get("UNIPIC_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    st.one_of(
        st.tuples(
            st.just("v1"),
            st.fixed_dictionaries(
                {"instances": st.lists(st.dictionaries(fields, values, max_size=5), min_size=1, max_size=2)}
            ),
        ),
        st.tuples(
            st.just("v2"),
            st.fixed_dictionaries(
                {
                    "inputs": st.lists(
                        st.fixed_dictionaries(
                            {
                                "name": fields,
                                "shape": st.lists(st.integers(-1, 2), max_size=2),
                                "datatype": st.sampled_from(["BYTES", "INT64", "FP32", "BOOL"]),
                                "data": st.lists(values, max_size=2),
                            }
                        ),
                        max_size=3,
                    )
                }
            ),
        ),
        st.tuples(st.just("raw"), st.binary(max_size=64)),
    )
)
def test_fuzz_over_loopback_never_5xx(server, case):
    kind, body = case
    path = "/v2/models/itest/infer" if kind == "v2" else "/v1/models/itest:predict"
    content = body if kind == "raw" else json.dumps(body).encode()
    # small steps/sizes keep valid requests cheap: the server caps them anyway (ci: max_steps 20, max_side 64)
    r = httpx.post(
        f"{server.url}{path}", content=content, headers={"content-type": "application/json"}, timeout=60
    )
    assert r.status_code < 500, (body, r.status_code, r.text[:300])


def test_server_alive_after_fuzz(server):
    assert is_alive(server.pid)
    assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200


def test_serves_an_s3_model_from_the_store(store_config, model_dir):
    from unipic.serving.predictor import UniPicPredictor
    from unipic.storage import ObjectStore

    uri = f"s3://{store_config.buckets.models}/serve-itest/model"
    ObjectStore(store_config).publish_dir(model_dir, uri)
    cfg = load_config("ci", ["serve.warmup=false"]).serve
    model = UniPicPredictor("s3test", uri, cfg, store_config)
    assert model.load() and model.version.startswith("sha256-")
    out = model.run_batch([model._resolve(parse_instance({"prompt": "a circle", "seed": 0, "steps": 1}))])
    assert out[0]["seeds"] == [0] and out[0]["images"]


def test_generate_and_edit_cli_over_endpoint_match_local_sampling(server, model_dir, tmp_path):
    """`unipic generate --endpoint` gives the images `unipic generate --model` gives (same seeds, same model)."""
    from typer.testing import CliRunner

    from unipic.cli.main import _register, app

    if not any(getattr(g, "name", None) == "serve" for g in app.registered_groups):
        _register()
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    common = [
        "--prompt",
        "a red circle",
        "--prompt",
        "a blue square",
        "--n",
        "2",
        "--steps",
        "2",
        "--seed",
        "5",
    ]
    run("generate", "--endpoint", server.url, "--out", str(tmp_path / "remote"), *common)
    run("generate", "--model", str(model_dir), "--out", str(tmp_path / "local"), *common)
    remote = sorted((tmp_path / "remote").glob("image-*.png"))
    local = sorted((tmp_path / "local").glob("image-*.png"))
    assert len(remote) == len(local) == 4
    for r, l in zip(remote, local):
        diff = np.abs(np.asarray(PIL.Image.open(r), dtype=int) - np.asarray(PIL.Image.open(l), dtype=int))
        assert diff.max() <= 2, (r.name, diff.max())  # batch composition may move a pixel by a rounding step
    run(
        "edit",
        "--endpoint",
        server.url,
        "--image",
        str(remote[0]),
        "--instruction",
        "make it green",
        "--steps",
        "2",
        "--out",
        str(tmp_path / "edit"),
    )
    assert (tmp_path / "edit" / "grid.png").is_file()
    neither = runner.invoke(app, ["generate", "--prompt", "x", "--out", str(tmp_path / "n")])
    assert neither.exit_code != 0
