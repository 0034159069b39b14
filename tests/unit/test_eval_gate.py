"""The promotion gate: thresholds, regression against the deployed model, incomplete or unreliable runs."""

import pytest

from unipic.config.evaluation import GateConfig
from unipic.evaluation.gate import decide, flat_metrics


def results(geneval=0.8, gedit=6.0, excluded=0, missing=(), judge="shapesworld-judge"):
    return {"model": "m", "benchmarks": {
        "shapes_geneval": {"headline": geneval, "metrics": {"overall": geneval, "tasks": {"colors": 0.9},
                                                            "missing_images": list(missing)},
                           "judge": {"model": "detector"}, "judge_stats": None},
        "shapes_gedit": {"headline": gedit, "metrics": {"overall": gedit, "groups": {"add": {"o": 5.0}}},
                         "judge": {"model": judge},
                         "judge_stats": {"requests": 100, "excluded": excluded, "failure_rate": excluded / 100,
                                         "failures": {}}},
    }}


def test_flat_metrics():
    m = flat_metrics(results())
    assert m["shapes_geneval.headline"] == 0.8 and m["shapes_geneval.tasks.colors"] == 0.9
    assert m["shapes_gedit.groups.add"] == 5.0 and m["shapes_gedit.judge_failure_rate"] == 0.0


def test_promote_when_thresholds_hold_and_no_regression():
    cfg = GateConfig(thresholds={"shapes_geneval.headline": 0.5, "shapes_gedit.headline": 5.0})
    d = decide(results(), cfg, results(geneval=0.79, gedit=6.05))
    assert d.promote and d.decision == "promote" and d.reasons == ["all checks passed"]


def test_reject_below_threshold_names_metric_and_values():
    d = decide(results(geneval=0.4), GateConfig(thresholds={"shapes_geneval.headline": 0.5}))
    assert not d.promote and any("shapes_geneval.headline = 0.4" in r and "0.5" in r for r in d.reasons)


def test_reject_regression_against_deployed():
    d = decide(results(gedit=5.0), GateConfig(max_regression=0.02), results(gedit=6.0))
    assert not d.promote and any("regression shapes_gedit" in r and "deployed 6" in r for r in d.reasons)
    assert decide(results(gedit=5.9), GateConfig(max_regression=0.02), results(gedit=6.0)).promote


def test_missing_metric_unreliable_judge_and_missing_images_reject():
    assert not decide(results(), GateConfig(thresholds={"dpg.headline": 80})).promote
    d = decide(results(excluded=20), GateConfig(max_judge_failure_rate=0.05))
    assert not d.promote and any("20 of 100 judge answers excluded" in r for r in d.reasons)
    d = decide(results(missing=["x/00.png"]), GateConfig())
    assert not d.promote and any("1 missing image" in r for r in d.reasons)


def test_require_deployed_baseline():
    assert not decide(results(), GateConfig(require_deployed=True)).promote
    assert decide(results(), GateConfig(require_deployed=False)).promote


def test_judge_change_is_noted():
    d = decide(results(), GateConfig(), results(judge="gpt-4.1"))
    assert any("judges differ" in c["detail"] for c in d.checks)


def test_gate_config_rejects_unknown_keys():
    with pytest.raises(Exception):
        GateConfig(threshold={"x": 1})
