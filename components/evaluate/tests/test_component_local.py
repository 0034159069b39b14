"""Local-runner test: evaluate a tiny bootstrapped random model under kfp.local, then gate it."""

import json

import pytest
from kfp import dsl, local

from components.evaluate.component import evaluate_model
from components.gate.component import gate_model


@pytest.mark.slow
def test_evaluate_then_gate_under_kfp_local(tmp_path):
    from unipic.config import load_config
    from unipic.models.bootstrap import bootstrap_base_model

    model = bootstrap_base_model(load_config("ci").model, tmp_path / "model")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               raise_on_error=True)
    overrides = ["evaluation.n_per_task=1", "evaluation.generation.images_per_prompt=1",
                 "evaluation.generation.num_inference_steps=2", "evaluation.gate.thresholds={shapes_geneval.headline: 0.5}"]

    @dsl.pipeline
    def eval_pipeline() -> str:
        ev = evaluate_model(preset="ci", overrides=overrides, model_uri=str(model), benchmarks=["shapes_geneval"],
                            previous_results_uri="")
        return gate_model(preset="ci", overrides=overrides, candidate=ev.outputs["results"],
                          deployed_results_uri="").outputs["Output"]

    # A random model cannot reach the 0.5 threshold: the gate must reject it.
    assert eval_pipeline().output == "reject"
    results = list((tmp_path / "root").rglob("results.json"))
    assert results and json.loads(results[0].read_text())["benchmarks"]["shapes_geneval"]["items"] == 6
