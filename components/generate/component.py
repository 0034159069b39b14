"""KFP component: generate a ShapesWorld dataset and publish it to the object store."""

from kfp import dsl

from components.images import CURATE


@dsl.component(base_image=CURATE, install_kfp_package=False)
def generate_shapes(
    preset: str,
    overrides: list,
    kind: str,
    out_uri: str,
    dataset: dsl.Output[dsl.Dataset],
) -> str:
    """Generate ShapesWorld (`kind`: t2i, edit or both) at `out_uri` (default: s3://<data bucket>/shapes/<config
    hash>); the output artifact records the URI, the manifest hash and the lineage. Returns the URI."""
    import json

    from unipic.config import config_hash, load_config
    from unipic.data.generate import generate_dataset

    cfg = load_config(preset, [str(o) for o in overrides])
    uri = out_uri or f"s3://{cfg.store.buckets.data}/shapes/{kind}-{config_hash(cfg.shapes)}"
    manifest = generate_dataset(cfg.shapes, uri, cfg.store, kind=kind, overwrite=True)
    lineage = manifest.metadata.get("lineage", {})
    dataset.metadata.update({
        "uri": uri,
        "dataset_hash": manifest.total_sha256,
        "n_samples": str(manifest.metadata.get("n_samples")),
        "config_hash": str(lineage.get("config_hash")),
        "git_commit": str(lineage.get("git_commit")),
    })
    with open(dataset.path, "w") as f:
        json.dump({"uri": uri, "manifest": json.loads(manifest.to_json())}, f)
    return uri
