"""KFP component: PDTR stage 1, editing RL (Flow-GRPO) on the Kontext model; publishes the merged model."""

from kfp import dsl

from components.images import TRAIN


@dsl.component(base_image=TRAIN, install_kfp_package=False)
def rl_edit(
    preset: str,
    overrides: list,
    base_model_uri: str,
    dataset_uri: str,
    dataset_rev: str,
    eval_dataset_uri: str,
    out_uri: str,
    model: dsl.Output[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
    report: dsl.Output[dsl.Markdown],
) -> str:
    """Flow-GRPO from `base_model_uri` (the pre-trained model: pretrain_kontext's output) on the prompts of `dataset_uri`;
    before/after scores of both tasks on `eval_dataset_uri` ("" = dataset_uri). Publishes the LoRA-merged pipeline
    to `out_uri` ("" = s3://<models bucket>/rl-edit/<config hash>) and returns its URI; `model` carries the URI
    and lineage, `metrics` the before/after scores, `report` the curves and before/after grids."""
    import os

    from components.images import TRAIN
    from unipic.orchestration.training_stage import run_rl_component

    return run_rl_component("edit", preset, overrides, base_model_uri, dataset_uri, dataset_rev, eval_dataset_uri,
                            out_uri, (model, metrics, report), image=TRAIN, run_id=os.environ.get("KFP_POD_NAME", ""))
