"""KFP component: the promotion gate between evaluation and deployment."""

from kfp import dsl

from components.images import CURATE


@dsl.component(base_image=CURATE, install_kfp_package=False)
def gate_model(
    preset: str,
    overrides: list,
    candidate: dsl.Input[dsl.Artifact],
    deployed_results_uri: str,
    decision: dsl.Output[dsl.Artifact],
) -> str:
    """Compare the candidate's evaluation (the `results` artifact of `evaluate_model`) with
    `evaluation.gate` thresholds and with the deployed model's results (`deployed_results_uri`: results.json
    or its folder, local or s3://, or a published evaluation prefix; empty = no deployed model). Returns "promote" or "reject"; the reasons are in `decision`."""
    import json
    from pathlib import Path

    from unipic.config import load_config
    from unipic.evaluation.gate import decide, load_results

    cfg = load_config(preset, [str(o) for o in overrides])
    deployed = load_results(deployed_results_uri, cfg.store) if deployed_results_uri else None
    result = decide(load_results(Path(candidate.path)), cfg.evaluation.gate, deployed)
    Path(decision.path).write_text(json.dumps(result.to_dict(), indent=2))
    decision.metadata.update({"decision": result.decision, "reasons": json.dumps(result.reasons)})
    return result.decision
