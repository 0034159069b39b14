"""Multi-node MetaQuery training: with cluster.metaquery.nodes > 1 the stage runs as a TrainJob; the Model
artifact carries the MetaQuery stage and route the nodes recorded, like the in-process path."""

import pytest

from components.metaquery.component import train_metaquery
from unipic.errors import ConfigError, UniPicError


def _run(cluster, s3_prefix, tmp_path, nodes=2, extra=()):
    return cluster.call(train_metaquery, tmp_path, preset="ci", overrides=cluster.overrides(nodes) + list(extra),
                        init_from=f"{s3_prefix}kontext", dataset_uri=f"{s3_prefix}data", dataset_rev="", stage=1,
                        image_to="dit", out_uri=f"{s3_prefix}mq1")


def test_metaquery_stage1_on_two_nodes(trainjob_cluster, s3_prefix, tmp_path):
    trainjob_cluster.publish_base(f"{s3_prefix}kontext")
    trainjob_cluster.record = {"kind": "metaquery", "metaquery_stage": 1, "image_to": "dit", "steps": 5,
                               "train_dit": False}
    uri, out = _run(trainjob_cluster, s3_prefix, tmp_path)
    (job,) = trainjob_cluster.created
    command = job["spec"]["trainer"]["command"]
    assert trainjob_cluster.command_tail(job)[:3] == ["unipic", "train", "metaquery"]
    for s in ("metaquery.train.stage=1", "metaquery.image_to=dit", f"metaquery.train.init_from={s3_prefix}kontext",
              f"metaquery.train.output={s3_prefix}mq1", "cluster.metaquery.nodes=2"):
        assert s in command
    assert job["spec"]["initializer"]["model"]["storageUri"] == f"{s3_prefix}kontext"
    assert uri == f"{s3_prefix}mq1"
    meta = out.model.metadata
    assert meta["metaquery_stage"] == "1" and meta["image_to"] == "dit"
    assert meta["parent_model"] == f"{s3_prefix}kontext"
    assert out.values == {"metaquery_stage": 1.0, "steps": 5.0}


def test_failed_metaquery_trainjob(trainjob_cluster, s3_prefix, tmp_path):
    trainjob_cluster.publish_base(f"{s3_prefix}kontext")
    trainjob_cluster.states = ["Created", "Running", "Failed"]
    with pytest.raises(UniPicError, match=r"TrainJob unipic-metaquery-\w+ failed"):
        _run(trainjob_cluster, s3_prefix, tmp_path)
    assert trainjob_cluster.reads == 3 and not (tmp_path / "report.md").exists()


def test_several_nodes_need_deepspeed(trainjob_cluster, s3_prefix, tmp_path):
    with pytest.raises(ConfigError, match="set metaquery.train.deepspeed.enabled=true"):
        _run(trainjob_cluster, s3_prefix, tmp_path, extra=["metaquery.train.deepspeed.enabled=false"])
    assert trainjob_cluster.created == []


def test_one_node_metaquery_stays_in_process(trainjob_cluster, s3_prefix, tmp_path, monkeypatch):
    from unipic.orchestration import stage_outputs
    from unipic.orchestration.training_stage import StageOutput

    seen = []
    monkeypatch.setattr(stage_outputs, "in_process", lambda stage, cfg, preset, sets, work: seen.append(
        (cfg.metaquery.train.stage, cfg.metaquery.image_to)) or StageOutput(cfg.metaquery.train.output, {}, {}))
    uri, _ = _run(trainjob_cluster, s3_prefix, tmp_path, nodes=1)
    assert seen == [(1, "dit")] and uri == f"{s3_prefix}mq1" and trainjob_cluster.created == []
