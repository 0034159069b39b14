"""KFP component: fail fast before any stage runs (store, credentials, buckets, inputs)."""

from kfp import dsl

from components.images import CURATE


@dsl.component(base_image=CURATE, install_kfp_package=False)
def check_prerequisites(preset: str, overrides: list, inputs: dict) -> str:
    """Check the object store answers with our credentials, the configured buckets exist, and every URI in
    `inputs` (name -> s3:// prefix or local dir; empty values skipped) is published. Returns a summary; raises
    listing every failed check."""
    from unipic.config import load_config
    from unipic.orchestration.prereqs import assert_prerequisites, check_prerequisites as run_checks

    cfg = load_config(preset, [str(o) for o in overrides])
    checks = run_checks(cfg.store, inputs={str(k): str(v) for k, v in inputs.items()})
    assert_prerequisites(checks)
    return "; ".join(f"{c.name}: {c.detail}" for c in checks)
