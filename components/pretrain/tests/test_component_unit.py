"""Unit test: call the component's python function with a tiny bootstrapped model and a generated ShapesWorld
dataset, publishing to a real local object store."""

import json
from types import SimpleNamespace

from components.pretrain.component import pretrain_kontext


class _Metrics(SimpleNamespace):
    def log_metric(self, name, value):
        self.values[name] = value


def test_pretrain_publishes_a_loadable_model_with_lineage(store_config, tmp_path, monkeypatch, s3_prefix):
    from unipic.config import load_config
    from unipic.config.data import ShapesConfig
    from unipic.data.generate import generate_dataset
    from unipic.models.bootstrap import bootstrap_base_model
    from unipic.pipelines.kontext import UniPicKontextPipeline
    from unipic.storage import ObjectStore, materialize

    monkeypatch.setenv("UNIPIC_S3_ACCESS_KEY", store_config.access_key.get_secret_value())
    monkeypatch.setenv("UNIPIC_S3_SECRET_KEY", store_config.secret_key.get_secret_value())
    monkeypatch.setenv("UNIPIC_NO_PROGRESS", "1")
    base = bootstrap_base_model(load_config("ci").model, tmp_path / "base")
    data = tmp_path / "data"
    generate_dataset(ShapesConfig(n_t2i=8, n_edit=8), data)
    model = SimpleNamespace(path=str(tmp_path / "model.json"), metadata={})
    metrics = _Metrics(values={})
    report = SimpleNamespace(path=str(tmp_path / "report.md"))
    uri = pretrain_kontext.python_func(
        preset="ci",
        overrides=[f"store.endpoint={store_config.endpoint}", "pretrain.steps=2", "pretrain.warmup_steps=0",
                   "pretrain.batch_size=4", "pretrain.sample_steps=1", "pretrain.sample_edits=1",
                   "pretrain.sample_prompts=['a red circle']"],
        base_model_uri=str(base), dataset_uri=str(data), dataset_rev="v1", out_uri=f"{s3_prefix}pretrained",
        model=model, metrics=metrics, report=report,
    )
    assert uri == f"{s3_prefix}pretrained"
    manifest = ObjectStore(store_config).read_manifest(uri)
    assert "unipic_lineage.json" in manifest.files and "model_index.json" in manifest.files
    assert manifest.metadata["stage"] == "pretrain" and manifest.metadata["dataset_rev"] == "v1"
    assert model.metadata["uri"] == uri and model.metadata["parent_model"] == str(base)
    assert model.metadata["dataset_uri"] == str(data) and len(model.metadata["dataset_hash"]) == 64
    assert json.loads((tmp_path / "model.json").read_text())["uri"] == uri
    assert metrics.values["steps"] == 2.0 and metrics.values["final_loss"] > 0
    assert "data:image/png;base64," in (tmp_path / "report.md").read_text()
    local = materialize(uri, store_config, tmp_path / "cache")
    pipe = UniPicKontextPipeline.from_pretrained(local)
    image = pipe("a red circle", num_inference_steps=1, guidance_scale=1.0).images[0]
    assert image.size == (32, 32)
