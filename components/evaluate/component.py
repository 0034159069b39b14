"""KFP component: evaluate a model on benchmarks (results, KFP Metrics, HTML report)."""

from kfp import dsl

from components.images import TRAIN


@dsl.component(base_image=TRAIN, install_kfp_package=False)
def evaluate_model(
    preset: str,
    overrides: list,
    model_uri: str,
    benchmarks: list,
    previous_results_uri: str,
    results: dsl.Output[dsl.Artifact],
    metrics: dsl.Output[dsl.Metrics],
    report: dsl.Output[dsl.HTML],
) -> str:
    """Run `benchmarks` (empty = the preset's `evaluation.benchmarks`) on the model at `model_uri` (folder or
    s3://); `previous_results_uri` (a results.json or its folder, local or s3://, or a published evaluation
    prefix; empty = none) feeds the comparison table.
    `results` is the whole evaluation folder (results.json, rows, images). Returns the headlines as JSON."""
    import json
    import shutil
    from pathlib import Path

    from unipic.config import load_config
    from unipic.evaluation import evaluate, flat_metrics, load_results

    cfg = load_config(preset, [str(o) for o in overrides])
    previous = load_results(previous_results_uri, cfg.store) if previous_results_uri else None
    out = Path(results.path)
    out.mkdir(parents=True, exist_ok=True)
    res = evaluate(cfg.evaluation, cfg.shapes, out, model=model_uri, benchmarks=[str(b) for b in benchmarks] or None,
                   store_cfg=cfg.store, previous=previous)
    for key, value in sorted(flat_metrics(res).items()):
        metrics.log_metric(key, value)
    shutil.copy(out / "report.html", report.path)
    headlines = {name: b["headline"] for name, b in res["benchmarks"].items()}
    results.metadata.update({"model": model_uri, "config_hash": res["config_hash"],
                             "git_commit": str(res["lineage"].get("git_commit")),
                             "headlines": json.dumps(headlines)})
    return json.dumps(headlines)
