"""KFP component: curate sources into a gated, published, featurised and DVC-versioned dataset."""

from kfp import dsl

from components.images import CURATE


@dsl.component(base_image=CURATE, install_kfp_package=False)
def curate_dataset(
    preset: str,
    overrides: list,
    sources: list,
    out_uri: str,
    version: bool,
    dataset: dsl.Output[dsl.Dataset],
    validation: dsl.Output[dsl.HTML],
    validation_result: dsl.Output[dsl.Artifact],
    card: dsl.Output[dsl.Markdown],
    metrics: dsl.Output[dsl.Metrics],
) -> str:
    """Curate `sources` (e.g. the generate step's s3:// URI, 'shapes', 'folder:DIR') and publish at `out_uri`
    (default: s3://<data bucket>/curated/<hash of config + sources>). The dataset artifact's metadata carries
    the lineage and the DVC version (dataset_tag, dataset_rev, dataset_md5). Returns the published URI.
    A failing expectation suite fails the task after writing `validation` and `validation_result`."""
    import json
    import os
    import shutil
    import tempfile

    from unipic.config import load_config
    from unipic.data.curation.stage import CurationInputs, check_sources, run_curation
    from unipic.data.validation import GateFailed

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    cfg = load_config(preset, [str(o) for o in overrides])
    names = [str(s) for s in sources if str(s)]
    check_sources(names)
    work = tempfile.mkdtemp(prefix="unipic-curate-")

    def copy_validation() -> None:
        pairs = (("validation_summary.html", validation), ("validation_result.json", validation_result))
        for src, art in pairs:
            path = os.path.join(work, "validation", src)
            if os.path.exists(path):
                shutil.copyfile(path, art.path)

    try:
        out = run_curation(names, CurationInputs.from_config(cfg), work, publish_uri=out_uri or None,
                           version=bool(version))
    except GateFailed:
        copy_validation()
        raise
    copy_validation()
    shutil.copyfile(out.dataset_dir / "README.md", card.path)
    meta = out.metadata()
    dataset.metadata.update(meta)
    for key in ("n_in", "n_out", "n_rejected"):
        metrics.log_metric(key, float(meta[key]))
    for reason, n in out.report.rejected.items():
        metrics.log_metric(f"rejected.{reason}", float(n))
    with open(dataset.path, "w") as f:
        json.dump({"uri": out.uri, "version": out.version.model_dump() if out.version else None,
                   "report": out.report.model_dump(), "metadata": meta}, f, indent=2)
    shutil.rmtree(work, ignore_errors=True)
    return out.uri or ""
