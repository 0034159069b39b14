"""KFP component: deploy a promoted model (local model server, or a canary KServe rollout in a cluster)."""

from kfp import dsl

from components.images import SERVE


@dsl.component(base_image=SERVE, install_kfp_package=False)
def deploy_model(
    preset: str,
    overrides: list,
    model_uri: str,
    mode: str,
    gate_decision: str,
    deployment: dsl.Output[dsl.Artifact],
) -> str:
    """Deploy `model_uri` (s3:// or a folder) when `gate_decision` is "promote" (anything else: skipped).
    mode "local": a detached model server on 127.0.0.1 (outlives this task; `unipic serve stop`), smoke-tested.
    mode "cluster": create or canary-patch the InferenceService, wait, smoke-test, promote or roll back.
    Returns the endpoint URL ("" when skipped); the record (JSON) is the `deployment` artifact."""
    import json
    from pathlib import Path

    from unipic.config import load_config
    from unipic.errors import ConfigError
    from unipic.serving import deploy as dep

    sets = [str(o) for o in overrides]
    cfg = load_config(preset, sets)
    if mode not in ("local", "cluster"):
        raise ConfigError(f"mode={mode!r}: use 'local' or 'cluster'")
    if gate_decision != "promote":
        record = {
            "mode": mode,
            "decision": "skipped",
            "reason": f"gate decision was {gate_decision!r}",
            "endpoint": "",
            "model": model_uri,
        }
    elif mode == "local":
        serve_cfg = cfg.serve.model_copy(update={"state_dir": Path(cfg.serve.state_dir).resolve()})
        sets.append(f"serve.state_dir={serve_cfg.state_dir}")
        record = dep.deploy_local(model_uri, serve_cfg, preset, sets)
    else:
        record = dep.deploy_cluster(model_uri, cfg.serve, dep.kserve_client(), preset).to_dict()
    Path(deployment.path).write_text(json.dumps(record, indent=2))
    deployment.metadata.update(
        {k: str(record.get(k, "")) for k in ("mode", "decision", "endpoint", "model_version")}
    )
    return str(record.get("endpoint", ""))
