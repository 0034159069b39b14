"""Unit tests: the deploy component's python function (skip on reject, refuse unknown modes, local deploy)."""

import json
import os
from types import SimpleNamespace

import pytest

from components.deploy.component import deploy_model
from unipic.errors import ConfigError


def artifact(tmp_path, name):
    return SimpleNamespace(path=str(tmp_path / name), metadata={})


def test_rejected_model_is_not_deployed(tmp_path):
    out = artifact(tmp_path, "dep.json")
    url = deploy_model.python_func(
        preset="ci",
        overrides=[],
        model_uri="s3://unipic-models/x",
        mode="local",
        gate_decision="reject",
        deployment=out,
    )
    record = json.loads((tmp_path / "dep.json").read_text())
    assert url == "" and record["decision"] == "skipped" and out.metadata["decision"] == "skipped"


def test_unknown_mode_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="mode='k8s'"):
        deploy_model.python_func(
            preset="ci",
            overrides=[],
            model_uri="m",
            mode="k8s",
            gate_decision="promote",
            deployment=artifact(tmp_path, "d.json"),
        )


@pytest.mark.slow
def test_local_deploy_outlives_the_call_and_stops_by_pid(tmp_path):
    from unipic.services.process import is_alive
    from unipic.serving.client import ServingClient
    from unipic.serving.server import read_record, stop_detached
    from unipic.serving.testing import tiny_model

    model = tiny_model(tmp_path / "model")
    state = tmp_path / "state"
    out = artifact(tmp_path, "dep.json")
    url = deploy_model.python_func(
        preset="ci",
        overrides=[f"serve.state_dir={state}", "serve.port=0", "serve.model_name=deploytest"],
        model_uri=str(model),
        mode="local",
        gate_decision="promote",
        deployment=out,
    )
    try:
        record = json.loads((tmp_path / "dep.json").read_text())
        assert (
            url.startswith("http://127.0.0.1:") and record["smoke"]["ok"] and record["smoke"]["requests"] == 3
        )
        assert is_alive(record["pid"]) and record["pid"] != os.getpid()
        with ServingClient(url, "deploytest") as client:
            assert client.generate("a red circle", seed=1, steps=1).images[0].size == (32, 32)
    finally:
        assert stop_detached(state, "deploytest") in ("terminated", "killed")
    assert read_record(state, "deploytest") is None and not is_alive(record["pid"])
