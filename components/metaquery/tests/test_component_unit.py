"""Unit test: call the component's python function against a real local store (tiny Kontext model + ShapesWorld)."""

import json
from types import SimpleNamespace

from components.metaquery.component import train_metaquery


class _Metrics(SimpleNamespace):
    def log_metric(self, name, value):
        self.values[name] = value


def test_train_metaquery_publishes_a_loadable_model(store_config, tmp_path, monkeypatch, s3_prefix):
    from unipic.config.data import ShapesConfig
    from unipic.config.model import ModelConfig
    from unipic.data.generate import generate_dataset
    from unipic.models.bootstrap import bootstrap_base_model
    from unipic.pipelines.metaquery import load_pipeline
    from unipic.storage import ObjectStore, materialize

    monkeypatch.setenv("UNIPIC_S3_ACCESS_KEY", store_config.access_key.get_secret_value())
    monkeypatch.setenv("UNIPIC_S3_SECRET_KEY", store_config.secret_key.get_secret_value())
    monkeypatch.setenv("UNIPIC_NO_PROGRESS", "1")
    kontext = bootstrap_base_model(ModelConfig(), tmp_path / "kontext")
    data = tmp_path / "data"
    generate_dataset(ShapesConfig(n_t2i=8, n_edit=8), data)
    model = SimpleNamespace(path=str(tmp_path / "model.json"), metadata={})
    metrics = _Metrics(values={})
    report = SimpleNamespace(path=str(tmp_path / "report.md"))
    uri = train_metaquery.python_func(
        preset="ci",
        overrides=[
            f"store.endpoint={store_config.endpoint}",
            "metaquery.train.steps=2",
            "metaquery.train.batch_size=2",
            "metaquery.train.sample_steps=1",
        ],
        init_from=str(kontext),
        dataset_uri=str(data),
        dataset_rev="",
        stage=2,
        image_to="dit",
        out_uri=f"{s3_prefix}mq",
        model=model,
        metrics=metrics,
        report=report,
    )
    assert uri == f"{s3_prefix}mq"
    manifest = ObjectStore(store_config).read_manifest(uri)
    assert any(f.endswith("connector/config.json") for f in manifest.files)
    assert model.metadata["uri"] == uri and model.metadata["metaquery_stage"] == "2"
    assert model.metadata["image_to"] == "dit" and model.metadata["parent_model"] == str(kontext)
    assert json.loads((tmp_path / "model.json").read_text())["uri"] == uri
    assert metrics.values["steps"] == 2.0 and "final_loss" in metrics.values
    assert "data:image/png;base64," in (tmp_path / "report.md").read_text()
    pipe = load_pipeline(materialize(uri, store_config, tmp_path / "cache"))
    assert type(pipe).__name__ == "UniPicMetaQueryPipeline" and pipe.image_to == "dit"
