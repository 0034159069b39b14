"""KFP component: the base model the pipeline starts from (SD3.5-M at cluster scale, a bootstrap locally)."""

from kfp import dsl

from components.images import TRAIN


@dsl.component(base_image=TRAIN, install_kfp_package=False)
def resolve_base_model(preset: str, overrides: list, base_model_uri: str, model: dsl.Output[dsl.Model]) -> str:
    """With `base_model_uri` (an SD3/SD3.5-M pipeline folder converted with `unipic models convert`, published
    to the store): verify it is published and safetensors-only. Without: bootstrap the preset's random-init
    stand-in at s3://<models bucket>/base/<model config hash> (reused when already there). Returns the URI."""
    import json

    from unipic.config import config_hash, load_config
    from unipic.errors import UniPicError
    from unipic.models.bootstrap import bootstrap_and_publish
    from unipic.orchestration.trainjob import assert_safetensors_only
    from unipic.storage import ObjectStore, is_s3_uri

    cfg = load_config(preset, [str(o) for o in overrides])
    store = ObjectStore(cfg.store)
    uri = base_model_uri or f"s3://{cfg.store.buckets.models}/base/{config_hash(cfg.model)}"
    if not is_s3_uri(uri):
        raise UniPicError(f"base_model_uri must be an s3:// model folder in the store, got '{uri}'")
    if not store.is_published(uri):
        if base_model_uri:
            raise UniPicError(f"base model {base_model_uri} is not a published s3:// model folder (no manifest)")
        bootstrap_and_publish(cfg.model, uri, cfg.store)
    manifest = store.read_manifest(uri)
    assert_safetensors_only(manifest.files)
    model.metadata.update({"uri": uri, "model_hash": manifest.total_sha256, "config_hash": config_hash(cfg.model),
                           "kind": "given" if base_model_uri else "bootstrap"})
    with open(model.path, "w") as f:
        json.dump({"uri": uri, "manifest_sha256": manifest.total_sha256}, f)
    return uri
