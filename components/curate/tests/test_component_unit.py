"""Unit test: call the component's python function directly against a real local store."""

import json
from types import SimpleNamespace

import pytest

from components.curate.component import curate_dataset


def _art(tmp_path, name):
    return SimpleNamespace(path=str(tmp_path / name), metadata={})


class _Metrics:
    def __init__(self):
        self.values = {}

    def log_metric(self, key, value):
        self.values[key] = value


def _env(monkeypatch, store_config):
    monkeypatch.setenv("UNIPIC_S3_ACCESS_KEY", store_config.access_key.get_secret_value())
    monkeypatch.setenv("UNIPIC_S3_SECRET_KEY", store_config.secret_key.get_secret_value())


@pytest.mark.slow
def test_curate_publishes_versions_and_records_lineage(store_config, tmp_path, monkeypatch, s3_prefix):
    from unipic.storage import ObjectStore

    _env(monkeypatch, store_config)
    overrides = [f"store.endpoint={store_config.endpoint}", "shapes.n_t2i=24", "shapes.n_edit=24",
                 "curation.gate.min_rows=20", f"features.state_dir={tmp_path}/features",
                 f"registry.path={tmp_path}/registry", f"registry.remote_prefix=t-{tmp_path.name}"]
    arts = {n: _art(tmp_path, n) for n in ("dataset", "validation", "validation_result", "card")}
    metrics = _Metrics()
    uri = curate_dataset.python_func(preset="ci", overrides=overrides, sources=["shapes", ""],
                                     out_uri=f"{s3_prefix}curated", version=True, metrics=metrics, **arts)
    meta = arts["dataset"].metadata
    assert uri == f"{s3_prefix}curated" and meta["uri"] == uri
    assert ObjectStore(store_config).read_manifest(uri).total_sha256 == meta["manifest_sha256"]
    assert meta["dataset_tag"] == "curated-v1" and len(meta["dataset_rev"]) == 40 and meta["dataset_md5"]
    assert all(isinstance(v, str) for v in meta.values())
    assert metrics.values["n_in"] == 48 and metrics.values["n_out"] == float(meta["n_out"])
    assert "PASSED" in (tmp_path / "validation").read_text()
    assert json.loads((tmp_path / "validation_result").read_text())["success"] is True
    assert "# Curated dataset" in (tmp_path / "card").read_text()
    assert json.loads((tmp_path / "dataset").read_text())["version"]["tag"] == "curated-v1"


def test_failing_gate_fails_the_task_but_leaves_the_report(store_config, tmp_path, monkeypatch, s3_prefix):
    from unipic.data.validation import GateFailed
    from unipic.storage import ObjectStore

    _env(monkeypatch, store_config)
    overrides = [f"store.endpoint={store_config.endpoint}", "shapes.n_t2i=8", "shapes.n_edit=0",
                 "curation.gate.min_rows=1000", f"features.state_dir={tmp_path}/features",
                 f"registry.path={tmp_path}/registry"]
    arts = {n: _art(tmp_path, n) for n in ("dataset", "validation", "validation_result", "card")}
    with pytest.raises(GateFailed, match="nothing was published"):
        curate_dataset.python_func(preset="ci", overrides=overrides, sources=["shapes"],
                                   out_uri=f"{s3_prefix}curated", version=True, metrics=_Metrics(), **arts)
    assert "FAILED" in (tmp_path / "validation").read_text()
    assert json.loads((tmp_path / "validation_result").read_text())["success"] is False
    assert not ObjectStore(store_config).list(s3_prefix)
    assert not (tmp_path / "registry").exists()
