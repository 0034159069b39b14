"""`unipic eval` and `unipic gate` as a user runs them (subprocess, real entry point)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

UNIPIC = str(Path(sys.executable).with_name("unipic"))


def run(*args, env=None):
    return subprocess.run([UNIPIC, *args], capture_output=True, text=True, timeout=600, env=env)


def test_unknown_benchmark_is_a_clear_error(tmp_path):
    r = run("eval", "--model", str(tmp_path), "--benchmark", "geneva")
    assert r.returncode != 0 and "unknown benchmark 'geneva'" in r.stderr and "Traceback" not in r.stderr


def test_missing_model_is_a_clear_error(tmp_path):
    r = run("eval", "--model", str(tmp_path / "nope"), "-b", "shapes_geneval")
    assert r.returncode == 2 and "not a folder or s3:// URI" in r.stderr and "Traceback" not in r.stderr


def _results(path, headline):
    path.mkdir()
    (path / "results.json").write_text(json.dumps({"model": path.name, "benchmarks": {"shapes_geneval": {
        "headline": headline, "metrics": {"overall": headline}, "judge_stats": None}}}))
    return str(path)


def test_gate_exit_codes_and_decision_file(tmp_path):
    good, bad, dep = _results(tmp_path / "good", 0.7), _results(tmp_path / "bad", 0.3), _results(tmp_path / "dep", 0.6)
    r = run("gate", "--candidate", good, "--deployed", dep, "--out", str(tmp_path / "d.json"))
    assert r.returncode == 0 and json.loads((tmp_path / "d.json").read_text())["decision"] == "promote"
    r = run("gate", "--candidate", bad, "--deployed", dep, "--set", "evaluation.gate.thresholds={shapes_geneval.headline: 0.5}")
    assert r.returncode == 1 and '"reject"' in r.stdout and "regression shapes_geneval" in r.stdout
    r = run("gate", "--candidate", str(tmp_path / "missing"))
    assert r.returncode == 2 and "no evaluation results" in r.stderr


@pytest.mark.slow
def test_eval_a_bootstrapped_model_end_to_end_and_resume(tmp_path):
    from unipic.config import load_config
    from unipic.models.bootstrap import bootstrap_base_model

    model = bootstrap_base_model(load_config("ci").model, tmp_path / "model")
    args = ["eval", "--model", str(model), "-b", "shapes_geneval", "-b", "shapes_gedit", "--out", str(tmp_path / "ev"),
            "--set", "evaluation.n_per_task=1", "--set", "evaluation.generation.images_per_prompt=1",
            "--set", "evaluation.generation.num_inference_steps=2"]
    r = run(*args)
    assert r.returncode == 0, r.stderr
    assert "shapes_geneval: overall =" in r.stdout and "judge excluded 0/14" in r.stdout
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert res["benchmarks"]["shapes_geneval"]["generation"]["generated"] == 6
    r2 = run(*args, "--previous", str(tmp_path / "ev"))
    res2 = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert r2.returncode == 0 and res2["benchmarks"]["shapes_geneval"]["generation"]["reused"] == 6
    assert res2["previous_model"] == str(model)
    assert res2["benchmarks"]["shapes_geneval"]["headline"] == res["benchmarks"]["shapes_geneval"]["headline"]
