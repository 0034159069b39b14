"""Local-runner test: generate ShapesWorld, then curate it, under kfp.local (SubprocessRunner, no venv)."""

import json

import pytest
from kfp import dsl, local

from components.curate.component import curate_dataset
from components.generate.component import generate_shapes


@pytest.mark.slow
def test_generate_then_curate_under_kfp_local(store_config, tmp_path, monkeypatch, s3_prefix):
    monkeypatch.setenv("UNIPIC_S3_ACCESS_KEY", store_config.access_key.get_secret_value())
    monkeypatch.setenv("UNIPIC_S3_SECRET_KEY", store_config.secret_key.get_secret_value())
    monkeypatch.setenv("UNIPIC_NO_PROGRESS", "1")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               raise_on_error=True)
    overrides = [f"store.endpoint={store_config.endpoint}", "shapes.n_t2i=24", "shapes.n_edit=24",
                 "curation.gate.min_rows=20", f"features.state_dir={tmp_path}/features",
                 f"registry.path={tmp_path}/registry", f"registry.remote_prefix=t-{tmp_path.name}"]

    @dsl.pipeline
    def generate_and_curate() -> str:
        gen = generate_shapes(preset="ci", overrides=overrides, kind="both", out_uri=f"{s3_prefix}shapes")
        cur = curate_dataset(preset="ci", overrides=overrides, sources=[gen.outputs["Output"]],
                             out_uri=f"{s3_prefix}curated", version=True)
        return cur.outputs["Output"]

    assert generate_and_curate().output == f"{s3_prefix}curated"
    pointers = [p for p in (tmp_path / "root").rglob("dataset") if p.is_file() and p.parent.name == "curate-dataset"]
    data = json.loads(pointers[0].read_text())
    assert data["version"]["tag"] == "curated-v1"
    assert data["report"]["n_in"] == 48 and data["metadata"]["uri"] == f"{s3_prefix}curated"
