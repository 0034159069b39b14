"""Unit test: call the component's python function; the model loader is swapped for the ShapesWorld oracle."""

import json
from types import SimpleNamespace

from components.evaluate.component import evaluate_model


class FakeMetrics(SimpleNamespace):
    def log_metric(self, key, value):
        self.logged[key] = value


def test_evaluate_writes_results_metrics_report(tmp_path, monkeypatch):
    from unipic.config import load_config
    from unipic.evaluation import runner
    from unipic.evaluation.oracle import ShapesOraclePipeline

    overrides = ["evaluation.n_per_task=1", "evaluation.generation.images_per_prompt=1"]
    cfg = load_config("ci", overrides)
    seen = {}

    def fake_load(model, store_cfg=None, cache_dir=None):
        seen["model"] = model
        return ShapesOraclePipeline(cfg.evaluation, cfg.shapes)

    monkeypatch.setattr(runner, "load_model", fake_load)
    prev = tmp_path / "prev.json"
    prev.write_text(json.dumps({"model": "old", "benchmarks": {"shapes_geneval": {"headline": 0.5}}}))
    results = SimpleNamespace(path=str(tmp_path / "results"), metadata={})
    metrics = FakeMetrics(path=str(tmp_path / "metrics.json"), logged={})
    report = SimpleNamespace(path=str(tmp_path / "report.html"), metadata={})
    out = evaluate_model.python_func(preset="ci", overrides=overrides, model_uri="s3://models/m1",
                                     benchmarks=["shapes_geneval", "shapes_gedit"], previous_results_uri=str(prev),
                                     results=results, metrics=metrics, report=report)
    assert json.loads(out) == {"shapes_geneval": 1.0, "shapes_gedit": 10.0} and seen["model"] == "s3://models/m1"
    assert metrics.logged["shapes_geneval.headline"] == 1.0 and "shapes_gedit.groups.recolor" in metrics.logged
    saved = json.loads((tmp_path / "results" / "results.json").read_text())
    assert saved["previous_model"] == "old" and results.metadata["model"] == "s3://models/m1"
    assert "paper: UniPic2" in (tmp_path / "report.html").read_text()
