"""Local-runner test: deploy_model after a gate-like step under kfp.local (SubprocessRunner, no venv)."""

import json

import pytest
from kfp import dsl, local

from components.deploy.component import deploy_model


@dsl.component(base_image="python:3.11")
def fake_gate(decision: str) -> str:
    return decision


def test_deploy_is_skipped_when_the_gate_rejects(tmp_path):
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path / "root"),
        raise_on_error=True,
    )

    @dsl.pipeline
    def deploy_pipeline(decision: str) -> str:
        gate = fake_gate(decision=decision)
        return deploy_model(
            preset="ci",
            overrides=[],
            model_uri="s3://unipic-models/none",
            mode="local",
            gate_decision=gate.output,
        ).outputs["Output"]

    run = deploy_pipeline(decision="reject")
    assert run.output == ""
    records = list((tmp_path / "root").rglob("deployment"))
    assert records and json.loads(records[0].read_text())["decision"] == "skipped"


@pytest.mark.slow
def test_local_server_outlives_the_kfp_task(tmp_path):
    from unipic.services.process import is_alive
    from unipic.serving.client import ServingClient
    from unipic.serving.server import read_record, stop_detached
    from unipic.serving.testing import tiny_model

    model = tiny_model(tmp_path / "model")
    state = tmp_path / "state"
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path / "root"),
        raise_on_error=True,
    )

    @dsl.pipeline
    def deploy_pipeline(decision: str) -> str:
        gate = fake_gate(decision=decision)
        sets = [f"serve.state_dir={state}", "serve.port=0", "serve.model_name=kfplocal"]
        return deploy_model(
            preset="ci", overrides=sets, model_uri=str(model), mode="local", gate_decision=gate.output
        ).outputs["Output"]

    try:
        url = deploy_pipeline(decision="promote").output
        rec = read_record(state, "kfplocal")
        assert (
            rec is not None and rec.url == url and is_alive(rec.pid)
        )  # the task's process is gone, the server not
        with ServingClient(url) as client:
            assert client.generate("a red circle", steps=1, seed=0).seeds == [0]
    finally:
        stop_detached(state, "kfplocal")
    assert read_record(state, "kfplocal") is None
