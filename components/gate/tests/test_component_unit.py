"""Unit test: the gate component's python function on results folders."""

import json
from types import SimpleNamespace

from components.gate.component import gate_model


def _results(path, headline):
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.json").write_text(json.dumps({"model": str(path), "benchmarks": {
        "shapes_geneval": {"headline": headline, "metrics": {"overall": headline}, "judge_stats": None}}}))
    return path


def test_gate_promotes_and_rejects_with_reasons(tmp_path):
    cand = SimpleNamespace(path=str(_results(tmp_path / "cand", 0.6)), metadata={})
    deployed = _results(tmp_path / "deployed", 0.5) / "results.json"
    out = SimpleNamespace(path=str(tmp_path / "d1.json"), metadata={})
    over = ["evaluation.gate.thresholds={shapes_geneval.headline: 0.55}"]
    assert gate_model.python_func(preset="ci", overrides=over, candidate=cand, deployed_results_uri=str(deployed),
                                  decision=out) == "promote"
    assert json.loads((tmp_path / "d1.json").read_text())["decision"] == "promote"

    worse = SimpleNamespace(path=str(_results(tmp_path / "worse", 0.4)), metadata={})
    out2 = SimpleNamespace(path=str(tmp_path / "d2.json"), metadata={})
    assert gate_model.python_func(preset="ci", overrides=over, candidate=worse,
                                  deployed_results_uri=str(deployed), decision=out2) == "reject"
    reasons = json.loads(out2.metadata["reasons"])
    assert any("threshold shapes_geneval.headline" in r for r in reasons)
    assert any("regression shapes_geneval" in r for r in reasons)
