"""Multi-node editing RL: with cluster.rl.nodes > 1 rl_edit runs `unipic train rl-edit` as a TrainJob and reports
the model and before/after scores its nodes published."""

import pytest

from components.images import TRAIN
from components.rl_edit.component import rl_edit
from unipic.errors import UniPicError
from unipic.orchestration.trainjob import stage_command

SCORES = {"before": {"edit": {"score": 0.5, "accuracy": 0.4}, "t2i": None},
          "after": {"edit": {"score": 0.7, "accuracy": 0.6}, "t2i": None}}


def _run(cluster, s3_prefix, tmp_path, nodes=2):
    return cluster.call(rl_edit, tmp_path, preset="ci", overrides=cluster.overrides(nodes),
                        base_model_uri=f"{s3_prefix}pretrained", dataset_uri=f"{s3_prefix}data", dataset_rev="",
                        eval_dataset_uri=f"{s3_prefix}heldout", out_uri="")


def test_rl_edit_on_two_nodes_reports_what_the_trainjob_published(trainjob_cluster, s3_prefix, tmp_path,
                                                                  store_config):
    from unipic.config import config_hash, load_config

    trainjob_cluster.publish_base(f"{s3_prefix}pretrained")
    trainjob_cluster.record = {"kind": "rl-edit", "rounds": 2, **SCORES}
    uri, out = _run(trainjob_cluster, s3_prefix, tmp_path)
    (job,) = trainjob_cluster.created
    sets = trainjob_cluster.overrides() + [
        f"rl.edit.base_model={s3_prefix}pretrained", f"rl.edit.dataset={s3_prefix}data",
        f"rl.edit.eval_dataset={s3_prefix}heldout"]
    expected = f"s3://{store_config.buckets.models}/rl-edit/{config_hash(load_config('ci', sets).rl.edit)}"
    assert uri == expected and out.model.metadata["uri"] == expected
    assert trainjob_cluster.command_tail(job) == stage_command("rl-edit", "ci", sets + [f"rl.edit.output={expected}"])
    assert job["spec"]["trainer"]["numNodes"] == 2 and job["spec"]["trainer"]["image"] == TRAIN
    assert job["metadata"]["labels"]["unipic/stage"] == "rl-edit"
    assert out.model.metadata["stage"] == "rl-edit" and out.record["after"]["edit"]["score"] == 0.7
    assert out.values["rounds"] == 2.0 and out.values["after_edit_score"] == 0.7
    assert out.values["before_edit_accuracy"] == 0.4


def test_failed_rl_edit_trainjob_fails_the_component(trainjob_cluster, s3_prefix, tmp_path):
    trainjob_cluster.publish_base(f"{s3_prefix}pretrained")
    trainjob_cluster.states = [None, "Failed"]
    with pytest.raises(UniPicError, match=r"TrainJob unipic-rl-edit-\w+ failed.*kubectl -n unipic logs"):
        _run(trainjob_cluster, s3_prefix, tmp_path)
    assert not (tmp_path / "model.json").exists()


def test_one_node_rl_edit_stays_in_process(trainjob_cluster, s3_prefix, tmp_path, monkeypatch):
    from unipic.orchestration import stage_outputs
    from unipic.orchestration.training_stage import StageOutput

    seen = []
    monkeypatch.setattr(stage_outputs, "in_process", lambda stage, cfg, preset, sets, work: seen.append(
        stage.section) or StageOutput("s3://m/rl", {"uri": "s3://m/rl"}, {"uri": "s3://m/rl"}))
    uri, out = _run(trainjob_cluster, s3_prefix, tmp_path, nodes=1)
    assert seen == ["rl.edit"] and uri == "s3://m/rl" and trainjob_cluster.created == []
