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
    import os

    from components.images import TRAIN
    from unipic.orchestration.training_stage import run_training_stage

    inputs = {"metaquery.train.stage": str(int(stage)), "metaquery.train.init_from": init_from,
              "metaquery.train.dataset": dataset_uri, "metaquery.train.dataset_rev": dataset_rev,
              "metaquery.image_to": image_to}
    out = run_training_stage("metaquery", preset, overrides, inputs, out_uri, image=TRAIN,
                             run_id=os.environ.get("KFP_POD_NAME", ""))
    return out.publish(model, metrics, report)
