"""Evaluation against the real object store (SeaweedFS on loopback): a model published with a manifest is
evaluated by URI, and the evaluation folder is published atomically."""

import json

import pytest

from unipic.config import load_config
from unipic.evaluation import evaluate
from unipic.errors import UniPicError


@pytest.mark.integration
def test_evaluate_model_from_s3_and_publish_results(store_config, store, s3_prefix, tmp_path):
    from unipic.models.bootstrap import bootstrap_and_publish

    cfg = load_config("ci", ["evaluation.n_per_task=1", "evaluation.generation.images_per_prompt=1",
                             "evaluation.generation.num_inference_steps=2", "evaluation.benchmarks=[shapes_geneval]"])
    model_uri = bootstrap_and_publish(cfg.model, f"{s3_prefix}model", store_config)
    res = evaluate(cfg.evaluation, cfg.shapes, tmp_path / "ev", model=model_uri, store_cfg=store_config,
                   publish_uri=f"{s3_prefix}eval")
    assert res["model"] == model_uri and res["published_uri"] == f"{s3_prefix}eval"
    manifest = store.read_manifest(f"{s3_prefix}eval")
    assert {"results.json", "report.html", "metrics.jsonl"} <= set(manifest.files)
    assert any(f.startswith("shapes_geneval/images/") for f in manifest.files)
    assert manifest.metadata["model"] == model_uri and "shapes_geneval" in manifest.metadata["headlines"]
    remote = json.loads(store.read_bytes(f"{s3_prefix}eval/results.json"))
    assert remote["benchmarks"]["shapes_geneval"]["items"] == 6


@pytest.mark.integration
def test_unpublished_model_uri_is_a_clear_error(store_config, s3_prefix, tmp_path):
    cfg = load_config("ci", ["evaluation.benchmarks=[shapes_geneval]"])
    with pytest.raises(UniPicError, match="not published|incomplete"):
        evaluate(cfg.evaluation, cfg.shapes, tmp_path, model=f"{s3_prefix}nothing-here", store_cfg=store_config)


@pytest.mark.integration
def test_gate_cli_reads_published_results_from_the_store(store_config, store, s3_prefix, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from unipic.cli.main import _register, app

    store.write_json(f"{s3_prefix}cand/results.json", {"model": "c", "benchmarks": {"shapes_geneval": {
        "headline": 0.9, "metrics": {}, "judge_stats": None}}})
    store.write_json(f"{s3_prefix}dep/results.json", {"model": "d", "benchmarks": {"shapes_geneval": {
        "headline": 0.5, "metrics": {}, "judge_stats": None}}})
    monkeypatch.setenv("UNIPIC_S3_ACCESS_KEY", store_config.access_key.get_secret_value())
    monkeypatch.setenv("UNIPIC_S3_SECRET_KEY", store_config.secret_key.get_secret_value())
    if not any(c.name == "gate" for c in app.registered_commands):
        _register()
    r = CliRunner().invoke(app, ["gate", "-c", f"{s3_prefix}cand", "-d", f"{s3_prefix}dep/results.json",
                                 "--set", f"store.endpoint={store_config.endpoint}"])
    assert r.exit_code == 0, r.output
    assert '"promote"' in r.output
