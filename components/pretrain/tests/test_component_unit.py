"""Unit test: call the component's python function with a tiny bootstrapped model and a generated ShapesWorld
dataset, publishing to a real local object store."""

from components.pretrain.component import pretrain_kontext


def test_pretrain_publishes_a_loadable_model_with_lineage(store_env, tiny_training_inputs, call_component, no_cluster,
                                                          tmp_path, s3_prefix):
    from unipic.pipelines.kontext import UniPicKontextPipeline
    from unipic.storage import ObjectStore, materialize

    base, data = tiny_training_inputs
    uri, out = call_component(
        pretrain_kontext, tmp_path, preset="ci",
        overrides=[f"store.endpoint={store_env.endpoint}", "pretrain.steps=2", "pretrain.warmup_steps=0",
                   "pretrain.batch_size=4", "pretrain.sample_steps=1", "pretrain.sample_edits=1",
                   "pretrain.sample_prompts=['a red circle']"],
        base_model_uri=str(base), dataset_uri=str(data), dataset_rev="v1", out_uri=f"{s3_prefix}pretrained",
    )
    assert uri == f"{s3_prefix}pretrained"
    manifest = ObjectStore(store_env).read_manifest(uri)
    assert "unipic_lineage.json" in manifest.files and "model_index.json" in manifest.files
    assert manifest.metadata["stage"] == "pretrain" and manifest.metadata["dataset_rev"] == "v1"
    assert out.model.metadata["uri"] == uri and out.model.metadata["parent_model"] == str(base)
    assert out.model.metadata["dataset_uri"] == str(data) and len(out.model.metadata["dataset_hash"]) == 64
    assert out.record["uri"] == uri and "trainjob" not in out.model.metadata
    assert out.values["steps"] == 2.0 and out.values["final_loss"] > 0
    assert "data:image/png;base64," in out.report
    local = materialize(uri, store_env, tmp_path / "cache")
    pipe = UniPicKontextPipeline.from_pretrained(local)
    image = pipe("a red circle", num_inference_steps=1, guidance_scale=1.0).images[0]
    assert image.size == (32, 32)
