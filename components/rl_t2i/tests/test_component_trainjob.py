"""Multi-node text-to-image RL through a TrainJob, here on a torch runtime launched with torchrun."""

import pytest

from components.rl_t2i.component import rl_t2i
from unipic.errors import ConfigError, UniPicError


def _run(cluster, s3_prefix, tmp_path, extra=(), nodes=3, **kwargs):
    args = dict(preset="ci", overrides=cluster.overrides(nodes) + list(extra), base_model_uri=f"{s3_prefix}edit-rl",
                dataset_uri=f"{s3_prefix}data", dataset_rev="r9", eval_dataset_uri="", out_uri=f"{s3_prefix}t2i-rl")
    return cluster.call(rl_t2i, tmp_path, **{**args, **kwargs})


def test_rl_t2i_trainjob_on_a_torch_runtime(trainjob_cluster, s3_prefix, tmp_path):
    trainjob_cluster.publish_base(f"{s3_prefix}edit-rl")
    trainjob_cluster.record = {"rounds": 4, "after": {"t2i": {"score": 0.9}}}
    torch = ["cluster.trainjob_runtime=torch-distributed", "cluster.trainjob_launcher=torchrun", "cluster.rl.gpus=4"]
    uri, out = _run(trainjob_cluster, s3_prefix, tmp_path, extra=torch)
    (job,) = trainjob_cluster.created
    trainer = job["spec"]["trainer"]
    assert job["spec"]["runtimeRef"]["name"] == "torch-distributed" and trainer["numNodes"] == 3
    assert trainer["command"][:2] == ["torchrun", "--no-python"]
    assert trainer["command"][2:6] == ["unipic", "train", "rl-t2i", "--preset"]
    assert f"rl.t2i.output={s3_prefix}t2i-rl" in trainer["command"] and "rl.t2i.dataset_rev=r9" in trainer["command"]
    assert trainer["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "4"
    assert job["spec"]["initializer"]["dataset"]["storageUri"] == f"{s3_prefix}data"
    assert uri == f"{s3_prefix}t2i-rl" and out.model.metadata["dataset_uri"] == f"{s3_prefix}data"
    assert out.values == {"rounds": 4.0, "after_t2i_score": 0.9}


def test_a_trainjob_that_publishes_nothing_fails_the_component(trainjob_cluster, s3_prefix, tmp_path):
    trainjob_cluster.publish_base(f"{s3_prefix}edit-rl")
    trainjob_cluster.publish = False
    with pytest.raises(UniPicError, match=r"TrainJob unipic-rl-t2i-\w+ completed but published no new model"):
        _run(trainjob_cluster, s3_prefix, tmp_path)


def test_local_inputs_cannot_reach_the_pods(trainjob_cluster, s3_prefix, tmp_path):
    with pytest.raises(ConfigError, match="rl.t2i.base_model='/tmp/m' is not an s3:// URI"):
        _run(trainjob_cluster, s3_prefix, tmp_path, base_model_uri="/tmp/m")
    assert trainjob_cluster.created == []


def test_one_node_rl_t2i_stays_in_process(trainjob_cluster, s3_prefix, tmp_path, monkeypatch):
    from unipic.orchestration import stage_outputs
    from unipic.orchestration.training_stage import StageOutput

    seen = []
    monkeypatch.setattr(stage_outputs, "in_process", lambda stage, cfg, preset, sets, work: seen.append(
        cfg.rl.t2i.dataset_rev) or StageOutput(cfg.rl.t2i.output, {}, {}, {"rounds": 1.0}))
    uri, out = _run(trainjob_cluster, s3_prefix, tmp_path, nodes=1)
    assert seen == ["r9"] and out.values == {"rounds": 1.0} and trainjob_cluster.created == []
