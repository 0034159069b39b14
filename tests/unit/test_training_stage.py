"""The training components' one entry point: config and output resolution, and the outputs it writes."""

import json
from types import SimpleNamespace

import pytest

from unipic.config import config_hash, load_config
from unipic.orchestration.stage_outputs import _numbers
from unipic.orchestration.training_stage import STAGES, StageOutput, resolve_stage_config


@pytest.mark.parametrize("stage,folder,hashed", [
    ("pretrain", "pretrain/", "pretrain"), ("rl-edit", "rl-edit/", "rl.edit"), ("rl-t2i", "rl-t2i/", "rl.t2i"),
    ("metaquery", "metaquery/stage1-", "metaquery")])
def test_default_output_is_named_by_the_stage_config_hash(stage, folder, hashed):
    cfg, sets = resolve_stage_config(STAGES[stage], "ci", ["metaquery.train.stage=1"], {}, "")
    section = load_config("ci", ["metaquery.train.stage=1"])
    for part in hashed.split("."):
        section = getattr(section, part)
    expected = f"s3://unipic-models/{folder}{config_hash(section)}"
    assert STAGES[stage].section_of(cfg).output == expected and sets[-1].endswith(f".output={expected}")


def test_inputs_override_the_preset_and_empty_ones_keep_it():
    stage = STAGES["pretrain"]
    cfg, sets = resolve_stage_config(stage, "ci", ["pretrain.steps=40"], {"pretrain.dataset": "s3://d/x",
                                                                          "pretrain.dataset_rev": ""}, "s3://m/out")
    assert sets == ["pretrain.steps=40", "pretrain.dataset=s3://d/x", "pretrain.output=s3://m/out"]
    assert cfg.pretrain.dataset == "s3://d/x" and cfg.pretrain.dataset_rev is None and cfg.pretrain.steps == 40


def test_publish_writes_every_artifact(tmp_path):
    values = {}
    model = SimpleNamespace(path=str(tmp_path / "model.json"), metadata={"old": "1"})
    out = StageOutput("s3://m/x", {"uri": "s3://m/x", "stage": "pretrain"}, {"uri": "s3://m/x"}, {"steps": 2.0},
                      "# r\n")
    report = SimpleNamespace(path=str(tmp_path / "r.md"))
    uri = out.publish(model, SimpleNamespace(log_metric=values.__setitem__), report)
    assert uri == "s3://m/x" and model.metadata == {"old": "1", "uri": "s3://m/x", "stage": "pretrain"}
    assert json.loads((tmp_path / "model.json").read_text()) == {"uri": "s3://m/x"} and values == {"steps": 2.0}
    assert (tmp_path / "r.md").read_text() == "# r\n"


def test_record_numbers_flatten_like_the_in_process_rl_metrics():
    record = {"rounds": 3, "train_dit": True, "kind": "rl-edit", "before": {"edit": {"score": 0.5}, "t2i": None}}
    assert _numbers(record) == {"rounds": 3.0, "before_edit_score": 0.5}
