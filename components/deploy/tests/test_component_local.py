"""Local-runner test: deploy_model after a gate-like step under kfp.local (SubprocessRunner, no venv)."""

import json

from kfp import dsl, local

from components.deploy.component import deploy_model


@dsl.component(base_image="python:3.11")
def fake_gate(decision: str) -> str:
    return decision


def test_deploy_is_skipped_when_the_gate_rejects(tmp_path):
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               raise_on_error=True)

    @dsl.pipeline
    def deploy_pipeline(decision: str) -> str:
        gate = fake_gate(decision=decision)
        return deploy_model(preset="ci", overrides=[], model_uri="s3://unipic-models/none", mode="local",
                            gate_decision=gate.output).outputs["Output"]

    run = deploy_pipeline(decision="reject")
    assert run.output == ""
    records = list((tmp_path / "root").rglob("deployment"))
    assert records and json.loads(records[0].read_text())["decision"] == "skipped"
