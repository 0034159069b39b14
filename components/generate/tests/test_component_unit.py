"""Unit test: call the component's python function directly against a real local store."""

import json
from types import SimpleNamespace

from components.generate.component import generate_shapes


def test_generate_publishes_and_records_lineage(store_config, tmp_path, monkeypatch, s3_prefix):
    from unipic.storage import ObjectStore

    monkeypatch.setenv("UNIPIC_S3_ACCESS_KEY", store_config.access_key.get_secret_value())
    monkeypatch.setenv("UNIPIC_S3_SECRET_KEY", store_config.secret_key.get_secret_value())
    out = SimpleNamespace(path=str(tmp_path / "dataset.json"), metadata={})
    uri = generate_shapes.python_func(
        preset="ci", overrides=[f"store.endpoint={store_config.endpoint}", "shapes.n_t2i=6", "shapes.n_edit=4"],
        kind="both", out_uri=f"{s3_prefix}shapes", dataset=out,
    )
    store = ObjectStore(store_config)
    manifest = store.read_manifest(uri)
    assert out.metadata["uri"] == uri and out.metadata["dataset_hash"] == manifest.total_sha256
    assert out.metadata["n_samples"] == "10"
    assert json.loads((tmp_path / "dataset.json").read_text())["uri"] == uri
