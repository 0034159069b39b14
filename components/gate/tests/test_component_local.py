"""Local-runner test: the gate in a two-step pipeline under kfp.local (SubprocessRunner, no venv)."""

import json

from kfp import dsl, local

from components.gate.component import gate_model


@dsl.component(base_image="python:3.11")
def fake_results(headline: float, results: dsl.Output[dsl.Artifact]):
    """Writes a results folder shaped like evaluate_model's `results` artifact."""
    import json
    import os

    os.makedirs(results.path, exist_ok=True)
    with open(os.path.join(results.path, "results.json"), "w") as f:
        json.dump({"model": "candidate", "benchmarks": {"shapes_geneval": {
            "headline": headline, "metrics": {"overall": headline}, "judge_stats": None}}}, f)


def test_gate_under_kfp_local(tmp_path):
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               raise_on_error=True)
    deployed = tmp_path / "deployed.json"
    deployed.write_text(json.dumps({"model": "deployed", "benchmarks": {"shapes_geneval": {
        "headline": 0.9, "metrics": {"overall": 0.9}, "judge_stats": None}}}))

    @dsl.pipeline
    def gate_pipeline(headline: float) -> str:
        res = fake_results(headline=headline)
        return gate_model(preset="ci", overrides=[], candidate=res.outputs["results"],
                          deployed_results_uri=str(deployed)).outputs["Output"]

    assert gate_pipeline(headline=0.95).output == "promote"
    assert gate_pipeline(headline=0.5).output == "reject"
