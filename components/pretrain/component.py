"""KFP component: pre-train UniPic2-SD3.5M-Kontext (joint T2I + editing) and publish the model."""

from kfp import dsl

from components.images import TRAIN


@dsl.component(base_image=TRAIN, install_kfp_package=False)
def pretrain_kontext(
    preset: str,
    overrides: list,
    base_model_uri: str,
    dataset_uri: str,
    dataset_rev: str,
    out_uri: str,
    model: dsl.Output[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
    report: dsl.Output[dsl.Markdown],
) -> str:
    """Train the Kontext DiT from `base_model_uri` (bootstrapped or converted SD3.5-M folder, path or s3://) on
    `dataset_uri` (curate_dataset's output); publish the pipeline folder (EMA weights, lineage) to `out_uri`
    (default s3://<models bucket>/pretrain/<config hash>). Returns the model URI; `model` carries it with the
    lineage, `metrics` the run summary, `report` the last sample grid and the loss curve."""
    import os

    from components.images import TRAIN
    from unipic.orchestration.training_stage import run_training_stage

    inputs = {"pretrain.base_model": base_model_uri, "pretrain.dataset": dataset_uri,
              "pretrain.dataset_rev": dataset_rev}
    out = run_training_stage("pretrain", preset, overrides, inputs, out_uri, image=TRAIN,
                             run_id=os.environ.get("KFP_POD_NAME", ""))
    return out.publish(model, metrics, report)
