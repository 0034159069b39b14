"""Shared fixtures. Owned by the storage area; other areas may append fixtures at the end.

`store_config` / `services_config` / `seaweed` start ONE real SeaweedFS per test session through
`unipic.services.seaweedfs.up` on free loopback ports, with a temporary state dir and random credentials,
and stop it by PID at the end. `store` is an `ObjectStore` on it. Tests skip cleanly only when the `weed`
binary is missing.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("UNIPIC_NO_PROGRESS", "1")

from unipic.config.store import ServicesConfig, StoreConfig  # noqa: E402
from unipic.errors import ServiceError  # noqa: E402


@dataclass(frozen=True)
class Seaweed:
    store: StoreConfig
    services: ServicesConfig


def make_seaweed_configs(state_dir, **store_kwargs) -> tuple[StoreConfig, ServicesConfig]:
    """Configs for a fresh SeaweedFS on free ports (S3 port <= 55535: gRPC is port + 10000)."""
    from unipic.services.ports import find_free_http_ports

    s3, master, volume, filer, admin = find_free_http_ports(5)
    store = StoreConfig(
        endpoint=f"127.0.0.1:{s3}",
        access_key=f"test-{secrets.token_hex(4)}",
        secret_key=secrets.token_urlsafe(24),
        timeout_s=5.0,
        retries=1,
        cache_dir=state_dir / "cache",
        **store_kwargs,
    )
    services = ServicesConfig(
        state_dir=state_dir, master_port=master, volume_port=volume, filer_port=filer, admin_port=admin,
        startup_timeout_s=60.0, stop_timeout_s=15.0,
    )
    return store, services


def start_seaweed(state_dir, attempts: int = 3) -> tuple[StoreConfig, ServicesConfig]:
    """Start SeaweedFS on fresh free ports, retrying when another test session grabbed a port first."""
    from unipic.services import seaweedfs

    for attempt in range(attempts):
        store, services = make_seaweed_configs(state_dir / f"try{attempt}")
        try:
            seaweedfs.up(store, services)
            return store, services
        except ServiceError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _require_weed() -> None:
    from unipic.services.seaweedfs import weed_binary

    try:
        weed_binary()
    except ServiceError as exc:
        pytest.skip(f"SeaweedFS binary not available: {exc}")


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory) -> Seaweed:
    """A real SeaweedFS for the whole session (started and stopped through our library)."""
    _require_weed()
    from unipic.services import seaweedfs

    store, services = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    try:
        yield Seaweed(store=store, services=services)
    finally:
        seaweedfs.down(store, services)


@pytest.fixture(scope="session")
def store_config(seaweed: Seaweed) -> StoreConfig:
    return seaweed.store


@pytest.fixture(scope="session")
def services_config(seaweed: Seaweed) -> ServicesConfig:
    return seaweed.services


@pytest.fixture()
def seaweed_configs():
    """Factory for configs of an extra, private SeaweedFS: `store, services = seaweed_configs(state_dir)`.

    For tests that start/stop their own instance instead of using the session one."""
    _require_weed()
    return make_seaweed_configs


@pytest.fixture()
def store(store_config: StoreConfig):
    from unipic.storage import ObjectStore

    return ObjectStore(store_config)


@pytest.fixture()
def s3_prefix(store_config: StoreConfig, request) -> str:
    """A fresh s3:// prefix in the data bucket, unique per test."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")[:60]
    return f"s3://{store_config.buckets.data}/tests/{name}-{secrets.token_hex(3)}/"


def _call_component(component, out_dir, **kwargs):
    """Call a KFP component's python function with recording outputs (training components: model, metrics,
    report); returns (its return value, outputs) with outputs.model.metadata, outputs.values (the metrics),
    outputs.record (the Model file) and outputs.report (the Markdown)."""
    import json
    from pathlib import Path
    from types import SimpleNamespace

    values = {}
    model = SimpleNamespace(path=str(Path(out_dir) / "model.json"), metadata={})
    report = SimpleNamespace(path=str(Path(out_dir) / "report.md"))
    result = component.python_func(model=model, metrics=SimpleNamespace(log_metric=values.__setitem__),
                                   report=report, **kwargs)
    return result, SimpleNamespace(model=model, values=values, record=json.loads(Path(model.path).read_text()),
                                   report=Path(report.path).read_text())


@pytest.fixture()
def call_component():
    """`uri, outputs = call_component(component, out_dir, **inputs)` (see `_call_component`)."""
    return _call_component


@pytest.fixture()
def no_cluster(monkeypatch):
    """Fail the test if a training component reaches for the Kubernetes API (single-node runs must not)."""
    monkeypatch.setattr("unipic.orchestration.trainjob_stage.kubernetes_api",
                        lambda: pytest.fail("a one-node stage reached for the Kubernetes API"))


@pytest.fixture()
def kfp_local(tmp_path, monkeypatch):
    """kfp.local with the subprocess runner in this environment (no venv), artifacts under tmp_path/root."""
    from kfp import local

    monkeypatch.setenv("UNIPIC_NO_PROGRESS", "1")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"), raise_on_error=True)
    return tmp_path / "root"


@pytest.fixture()
def store_env(store_config, monkeypatch):
    """The test store's credentials in the environment, as a KFP task's S3 Secret gives them."""
    monkeypatch.setenv("UNIPIC_S3_ACCESS_KEY", store_config.access_key.get_secret_value())
    monkeypatch.setenv("UNIPIC_S3_SECRET_KEY", store_config.secret_key.get_secret_value())
    monkeypatch.setenv("UNIPIC_NO_PROGRESS", "1")
    return store_config


@pytest.fixture()
def tiny_training_inputs(tmp_path):
    """A tiny bootstrapped Kontext base model and an 8+8-sample ShapesWorld dataset on disk: (model, data)."""
    from unipic.config import load_config
    from unipic.config.data import ShapesConfig
    from unipic.data.generate import generate_dataset
    from unipic.models.bootstrap import bootstrap_base_model

    base = bootstrap_base_model(load_config("ci").model, tmp_path / "base")
    generate_dataset(ShapesConfig(n_t2i=8, n_edit=8), tmp_path / "data")
    return base, tmp_path / "data"


class FakeTrainer:
    """Kubeflow Trainer on a recorded Kubernetes API (owned by orchestration): records the TrainJobs created,
    answers status reads from `states`, and on "Complete" publishes what the job's nodes would have: a model
    with a lineage record at the `--set <section>.output=` URI of the job's command (`publish=False`: none)."""

    def __init__(self, store_config, states=("Created", "Complete"), publish=True, record=None):
        self.store_config, self.states, self.publish = store_config, list(states), publish
        self.record, self.created, self.reads = dict(record or {}), [], 0

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        self.created.append(body)
        return body

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        self.reads += 1
        state = self.states.pop(0)
        if state == "Complete" and self.publish:
            self._publish(self.created[-1])
        return {"status": {"conditions": [{"type": state, "status": "True", "message": "rank 3: CUDA out of memory"}]
                           if state else []}}

    def _publish(self, job):
        import json
        import tempfile
        from pathlib import Path

        from unipic.lineage import Lineage
        from unipic.storage import ObjectStore

        sets = dict(a.split("=", 1) for a in job["spec"]["trainer"]["command"] if "=" in a and a.startswith(
            ("pretrain.", "rl.", "metaquery.")))
        out = next(v for k, v in sets.items() if k.endswith(".output"))
        lineage = Lineage(stage=job["metadata"]["labels"]["unipic/stage"], config_hash="c0ffee",
                          parent_model=job["spec"]["initializer"]["model"]["storageUri"],
                          dataset_uri=job["spec"]["initializer"]["dataset"]["storageUri"])
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "unipic_lineage.json").write_text(json.dumps({**lineage.model_dump(), **self.record}))
            (Path(tmp) / "model_index.json").write_text("{}")
            ObjectStore(self.store_config).publish_dir(tmp, out, metadata=lineage.as_metadata())

    def publish_base(self, uri, weights="transformer/diffusion_pytorch_model.safetensors"):
        """A base model for the job's initializer (only its file names matter to the component)."""
        import tempfile
        from pathlib import Path

        from unipic.storage import ObjectStore

        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / weights).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / weights).write_bytes(b"weights")
            (Path(tmp) / "model_index.json").write_text("{}")
            ObjectStore(self.store_config).publish_dir(tmp, uri)
        return uri

    def call(self, component, tmp_path, **kwargs):
        return _call_component(component, tmp_path, **kwargs)

    def command_tail(self, job):
        """The `unipic train ...` part of a job's command (after the launcher)."""
        command = job["spec"]["trainer"]["command"]
        return command[command.index("unipic"):]

    def overrides(self, nodes=2):
        """Overrides that point a component at the test store and ask for `nodes` nodes of every stage."""
        sections = ("pretrain", "rl.edit", "rl.t2i", "metaquery.train")
        return ([f"store.endpoint={self.store_config.endpoint}", "cluster.trainjob_poll_s=0"]
                + [f"cluster.{r}.nodes={nodes}" for r in ("pretrain", "rl", "metaquery")]
                + [f"{s}.deepspeed.enabled=true" for s in sections])


@pytest.fixture()
def trainjob_cluster(store_env, monkeypatch):
    """A FakeTrainer that the training components reach instead of the in-cluster Kubernetes API."""
    fake = FakeTrainer(store_env)
    monkeypatch.setattr("unipic.orchestration.trainjob_stage.kubernetes_api", lambda: fake)
    return fake
