"""KFP component: train UniPic2-MetaQuery (stage 1 or 2) and publish the model to the object store."""

from kfp import dsl

from components.images import TRAIN


@dsl.component(base_image=TRAIN, install_kfp_package=False)
def train_metaquery(
    preset: str,
    overrides: list,
    init_from: str,
    dataset_uri: str,
    dataset_rev: str,
    stage: int,
    image_to: str,
    out_uri: str,
    model: dsl.Output[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
    report: dsl.Output[dsl.Markdown],
) -> str:
    """Train from `init_from` (a Kontext model URI, or a stage-1 MetaQuery model) on `dataset_uri`; publish the
    MetaQuery model folder to `out_uri` (default s3://<models bucket>/metaquery/stage<N>-<config hash>).
    Returns the model URI; `model` carries it with the lineage, `metrics` the run summary, `report` a sample grid."""
    import base64
    import json
    import tempfile
    from pathlib import Path

    from unipic.config import config_hash, load_config
    from unipic.training.metaquery import run_metaquery

    sets = [str(o) for o in overrides] + [
        f"metaquery.train.stage={int(stage)}",
        f"metaquery.train.init_from={init_from}",
        f"metaquery.train.dataset={dataset_uri}",
    ]
    if dataset_rev:
        sets.append(f"metaquery.train.dataset_rev={dataset_rev}")
    if image_to:
        sets.append(f"metaquery.image_to={image_to}")
    cfg = load_config(preset, sets)
    uri = (
        out_uri or f"s3://{cfg.store.buckets.models}/metaquery/stage{int(stage)}-{config_hash(cfg.metaquery)}"
    )
    cfg = load_config(preset, sets + [f"metaquery.train.output={uri}"])
    with tempfile.TemporaryDirectory(prefix="unipic-metaquery-") as work:
        res = run_metaquery(cfg.metaquery, Path(work), store_cfg=cfg.store)
        t = res.train
        model.metadata.update(
            {
                "uri": res.model,
                **res.lineage.as_metadata(),
                "metaquery_stage": str(stage),
                "image_to": cfg.metaquery.image_to,
            }
        )
        with open(model.path, "w") as f:
            json.dump({"uri": res.model, "lineage": res.lineage.model_dump()}, f)
        final = t.losses.get(t.last_step)
        metrics.log_metric("steps", float(t.last_step))
        if final is not None:
            metrics.log_metric("final_loss", float(final))
        lines = [
            f"# MetaQuery stage {stage}",
            "",
            f"- model: `{res.model}`",
            f"- from: `{init_from}`",
            f"- dataset: `{dataset_uri}`",
            f"- steps: {t.last_step}, final loss: {final}",
            f"- image_to: {cfg.metaquery.image_to}",
            "",
        ]
        for png in t.sample_grids[-1:] + ([t.curve_png] if t.curve_png else []):
            data = base64.b64encode(Path(png).read_bytes()).decode()
            lines.append(f"![{Path(png).name}](data:image/png;base64,{data})")
        with open(report.path, "w") as f:
            f.write("\n".join(lines) + "\n")
    return res.model
