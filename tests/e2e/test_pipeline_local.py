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
    ]
    result = run_local(local_unipic2, {"preset": "ci", "overrides": overrides}, tmp_path / "root",
                       enable_caching=False)
    job = next((tmp_path / "root").iterdir())
    outputs = {p.parent.name: json.loads(p.read_text()) for p in job.rglob("executor_output.json")}
    for stage in ("check-prerequisites", "generate-shapes", "curate-dataset", "resolve-base-model",
                  "pretrain-kontext", "train-metaquery", "train-metaquery-2", "evaluate-model", "gate-model",
                  "write-run-report"):
        assert stage in outputs, f"stage {stage} did not run ({sorted(outputs)})"
    # lineage flows: the pre-trained model names the curated dataset and the base model as its parents
    pre = outputs["pretrain-kontext"]["artifacts"]["model"]["artifacts"][0]["metadata"]
    cur = outputs["curate-dataset"]["artifacts"]["dataset"]["artifacts"][0]["metadata"]
    base = outputs["resolve-base-model"]["parameterValues"]["Output"]
    assert pre["dataset_uri"] == cur["uri"] and pre["parent_model"] == base
    assert cur["dataset_rev"] and pre["dataset_rev"] == cur["dataset_rev"]
    gate = outputs["gate-model"]["parameterValues"]["Output"]
    assert gate in ("promote", "reject")
    report = (job / "run_report.html").read_text()
    assert "pretrain-kontext" in report and "evaluate-model" in report
    assert result.wall_s > 0
