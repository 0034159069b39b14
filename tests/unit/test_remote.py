"""Submitting, listing and following runs against a recorded KFP client."""

from types import SimpleNamespace

import pytest

from unipic.config.cluster import ClusterConfig
from unipic.errors import UniPicError
from unipic.orchestration.remote import follow, list_runs, submit


class RecordedClient:
    def __init__(self, states=()):
        self.calls, self.states = [], list(states)

    def create_run_from_pipeline_package(self, path, **kw):
        self.calls.append(("create", path, kw))
        return SimpleNamespace(run_id="r-1")

    def list_runs(self, **kw):
        self.calls.append(("list", kw))
        return SimpleNamespace(runs=[SimpleNamespace(run_id="r-1", display_name="a", state="RUNNING", created_at="t")])

    def get_run(self, run_id):
        return SimpleNamespace(run_id=run_id, display_name="a", state=self.states.pop(0), created_at="t")


CLUSTER = ClusterConfig(host="https://kfp.example", s3_endpoint="minio.ns.svc:9000", s3_secret="s")


def test_submit_passes_preset_overrides_and_store_endpoint(tmp_path):
    pipe = tmp_path / "p.yaml"
    pipe.write_text("x")
    client = RecordedClient()
    info = submit(CLUSTER, pipe, preset="base", overrides=["pretrain.lr=1e-4"], run_name="exp1",
                  client_factory=lambda c: client)
    _, path, kw = client.calls[0]
    assert info.run_id == "r-1" and path == str(pipe)
    assert kw["arguments"] == {"preset": "base", "overrides": ["store.endpoint=minio.ns.svc:9000", "pretrain.lr=1e-4"]}
    assert kw["experiment_name"] == "unipic2" and kw["service_account"] == "unipic-pipeline"


def test_submit_needs_compiled_yaml_and_host(tmp_path):
    with pytest.raises(UniPicError, match="unipic compile"):
        submit(CLUSTER, tmp_path / "none.yaml", preset="ci", overrides=[], run_name="x",
               client_factory=lambda c: RecordedClient())
    pipe = tmp_path / "p.yaml"
    pipe.write_text("x")
    with pytest.raises(UniPicError, match="--host"):
        submit(ClusterConfig(), pipe, preset="ci", overrides=[], run_name="x")


def test_list_and_follow():
    assert list_runs(CLUSTER, client_factory=lambda c: RecordedClient())[0].state == "RUNNING"
    seen = []
    client = RecordedClient(["PENDING", "RUNNING", "RUNNING", "SUCCEEDED"])
    info = follow(CLUSTER, "r-1", client_factory=lambda c: client, on_change=lambda i: seen.append(i.state),
                  sleep=lambda s: None)
    assert info.state == "SUCCEEDED" and seen == ["PENDING", "RUNNING", "SUCCEEDED"]


def test_follow_raises_on_failure():
    with pytest.raises(UniPicError, match="FAILED"):
        follow(CLUSTER, "r-1", client_factory=lambda c: RecordedClient(["RUNNING", "FAILED"]), sleep=lambda s: None)
