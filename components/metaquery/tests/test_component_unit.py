"""Unit test: call the component's python function against a real local store (tiny Kontext model + ShapesWorld)."""

from components.metaquery.component import train_metaquery


def test_train_metaquery_publishes_a_loadable_model(store_env, call_component, no_cluster, tmp_path, s3_prefix):
    from unipic.config.data import ShapesConfig
    from unipic.config.model import ModelConfig
    from unipic.data.generate import generate_dataset
    from unipic.models.bootstrap import bootstrap_base_model
    from unipic.pipelines.metaquery import load_pipeline
    from unipic.storage import ObjectStore, materialize

    kontext = bootstrap_base_model(ModelConfig(), tmp_path / "kontext")
    data = tmp_path / "data"
    generate_dataset(ShapesConfig(n_t2i=8, n_edit=8), data)
    overrides = [f"store.endpoint={store_env.endpoint}", "metaquery.train.steps=2", "metaquery.train.batch_size=2",
                 "metaquery.train.sample_steps=1"]
    uri, out = call_component(train_metaquery, tmp_path, preset="ci", overrides=overrides, init_from=str(kontext),
                              dataset_uri=str(data), dataset_rev="", stage=2, image_to="dit", out_uri=f"{s3_prefix}mq")
    assert uri == f"{s3_prefix}mq"
    manifest = ObjectStore(store_env).read_manifest(uri)
    assert any(f.endswith("connector/config.json") for f in manifest.files)
    assert out.model.metadata["uri"] == uri and out.model.metadata["metaquery_stage"] == "2"
    assert out.model.metadata["image_to"] == "dit" and out.model.metadata["parent_model"] == str(kontext)
    assert out.record["uri"] == uri
    assert out.values["steps"] == 2.0 and "final_loss" in out.values
    assert "data:image/png;base64," in out.report
    pipe = load_pipeline(materialize(uri, store_env, tmp_path / "cache"))
    assert type(pipe).__name__ == "UniPicMetaQueryPipeline" and pipe.image_to == "dit"
