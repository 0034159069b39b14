"""The whole UniPic 2.0 DAG on the `ci` preset under kfp.local, against a real SeaweedFS on loopback."""

import json
from pathlib import Path

import pytest

from pipelines.unipic2 import local_unipic2
from unipic.orchestration.local import run_local


@pytest.mark.e2e
def test_ci_pipeline_end_to_end(store_config, tmp_path, monkeypatch):
    monkeypatch.setenv("UNIPIC_S3_ACCESS_KEY", store_config.access_key.get_secret_value())
    monkeypatch.setenv("UNIPIC_S3_SECRET_KEY", store_config.secret_key.get_secret_value())
    overrides = [
        f"store.endpoint={store_config.endpoint}",
        f"registry.path={tmp_path / 'registry'}",
        f"features.state_dir={tmp_path / 'features'}",
        f"run.workdir={tmp_path / 'runs'}",
        f"serve.state_dir={tmp_path / 'serve'}",
        "serve.port=0",
    ]
    try:
        result = run_local(local_unipic2, {"preset": "ci", "overrides": overrides}, tmp_path / "root",
                           enable_caching=False)
    finally:  # the deploy stage leaves a model server running on purpose: stop it by its PID file
        from unipic.config import load_config
        from unipic.serving.server import stop_detached

        serve = load_config("ci", overrides).serve
        stop_detached(serve.state_dir, serve.model_name)
    job = next((tmp_path / "root").iterdir())
    outputs = {p.parent.name: json.loads(p.read_text()) for p in job.rglob("executor_output.json")}
    for stage in ("check-prerequisites", "generate-shapes", "curate-dataset", "resolve-base-model",
                  "pretrain-kontext", "rl-edit", "rl-t2i", "train-metaquery", "train-metaquery-2", "evaluate-model",
                  "gate-model", "write-run-report"):
        assert stage in outputs, f"stage {stage} did not run ({sorted(outputs)})"
    # lineage flows: the pre-trained model names the curated dataset and the base model as its parents
    pre = outputs["pretrain-kontext"]["artifacts"]["model"]["artifacts"][0]["metadata"]
    cur = outputs["curate-dataset"]["artifacts"]["dataset"]["artifacts"][0]["metadata"]
    base = outputs["resolve-base-model"]["parameterValues"]["Output"]
    assert pre["dataset_uri"] == cur["uri"] and pre["parent_model"] == base
    assert cur["dataset_rev"] and pre["dataset_rev"] == cur["dataset_rev"]
    # PDTR order: RL-edit starts from the pre-trained model, RL-T2I from RL-edit's, MetaQuery from RL-T2I's
    rl1 = outputs["rl-edit"]["artifacts"]["model"]["artifacts"][0]["metadata"]
    rl2 = outputs["rl-t2i"]["artifacts"]["model"]["artifacts"][0]["metadata"]
    mq1 = outputs["train-metaquery"]["artifacts"]["model"]["artifacts"][0]["metadata"]
    assert rl1["parent_model"] == pre["uri"] and rl2["parent_model"] == rl1["uri"]
    assert mq1["parent_model"] == rl2["uri"]
    gate = outputs["gate-model"]["parameterValues"]["Output"]
    assert gate in ("promote", "reject")
    if gate == "promote":
        deployment = outputs["deploy-model"]["parameterValues"]["Output"]
        assert deployment.startswith("http://127.0.0.1:")
    report = (job / "run_report.html").read_text()
    assert "pretrain-kontext" in report and "evaluate-model" in report
    assert result.wall_s > 0
