"""Multi-node pre-training: with cluster.pretrain.nodes > 1 the component trains through a Kubeflow Trainer
TrainJob (a recorded Kubernetes API, a real local store) and publishes the same outputs as in-process."""

import pytest

from components.images import TRAIN
from components.pretrain.component import pretrain_kontext
from unipic.errors import UniPicError
from unipic.orchestration.trainjob import stage_command


def _run(cluster, s3_prefix, tmp_path, nodes=2):
    overrides = cluster.overrides(nodes) + ["pretrain.steps=30"]
    uri, out = cluster.call(pretrain_kontext, tmp_path, preset="ci", overrides=overrides,
                            base_model_uri=f"{s3_prefix}base", dataset_uri=f"{s3_prefix}data", dataset_rev="v3",
                            out_uri=f"{s3_prefix}model")
    return uri, overrides, out


def test_two_nodes_run_a_trainjob_and_publish_its_model(trainjob_cluster, s3_prefix, tmp_path):
    trainjob_cluster.publish_base(f"{s3_prefix}base")
    trainjob_cluster.record = {"kind": "pretrain", "steps": 30, "final_loss": 0.25}
    uri, overrides, out = _run(trainjob_cluster, s3_prefix, tmp_path)
    (job,) = trainjob_cluster.created
    spec = job["spec"]
    assert spec["runtimeRef"]["name"] == "deepspeed-distributed" and spec["trainer"]["numNodes"] == 2
    assert spec["trainer"]["image"] == TRAIN
    assert spec["trainer"]["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "8"
    assert spec["trainer"]["command"][0] == "bash" and "mpirun" in spec["trainer"]["command"][2]
    assert trainjob_cluster.command_tail(job) == stage_command("pretrain", "ci", overrides + [
        f"pretrain.base_model={s3_prefix}base", f"pretrain.dataset={s3_prefix}data", "pretrain.dataset_rev=v3",
        f"pretrain.output={s3_prefix}model"])
    assert spec["initializer"]["model"]["storageUri"] == f"{s3_prefix}base"
    assert trainjob_cluster.states == [] and trainjob_cluster.reads == 2
    assert uri == f"{s3_prefix}model"
    meta = out.model.metadata
    assert meta["uri"] == uri and meta["stage"] == "pretrain" and meta["parent_model"] == f"{s3_prefix}base"
    assert meta["trainjob"] == f"unipic/{job['metadata']['name']}" and meta["nodes"] == "2"
    assert out.record["uri"] == uri and out.record["lineage"]["config_hash"] == "c0ffee"
    assert out.values["steps"] == 30.0 and out.values["final_loss"] == 0.25
    assert job["metadata"]["name"] in out.report


def test_a_failed_trainjob_fails_the_component_naming_the_job(trainjob_cluster, s3_prefix, tmp_path):
    trainjob_cluster.publish_base(f"{s3_prefix}base")
    trainjob_cluster.states = ["Created", "Failed"]
    with pytest.raises(UniPicError, match=r"TrainJob unipic-pretrain-[0-9a-f]{10} failed: rank 3: CUDA out of memory"):
        _run(trainjob_cluster, s3_prefix, tmp_path)
    assert len(trainjob_cluster.created) == 1
    assert not (tmp_path / "model.json").exists() and not (tmp_path / "report.md").exists()


def test_pickle_weights_are_refused_before_anything_is_submitted(trainjob_cluster, s3_prefix, tmp_path):
    trainjob_cluster.publish_base(f"{s3_prefix}base", weights="transformer/diffusion_pytorch_model.bin")
    with pytest.raises(UniPicError, match="safetensors"):
        _run(trainjob_cluster, s3_prefix, tmp_path)
    assert trainjob_cluster.created == []


def test_one_node_trains_in_process(trainjob_cluster, s3_prefix, tmp_path, monkeypatch):
    from unipic.orchestration import stage_outputs
    from unipic.orchestration.training_stage import StageOutput

    ran = []
    monkeypatch.setattr(stage_outputs, "in_process", lambda stage, cfg, preset, sets, work: ran.append(
        (stage.name, cfg.pretrain.output)) or StageOutput(cfg.pretrain.output, {"uri": "x"}, {}, {"steps": 3.0}))
    uri, _, out = _run(trainjob_cluster, s3_prefix, tmp_path, nodes=1)
    assert ran == [("pretrain", f"{s3_prefix}model")] and uri == f"{s3_prefix}model"
    assert trainjob_cluster.created == [] and out.values == {"steps": 3.0}


def test_a_task_env_makes_the_job_image_the_compile_time_image(monkeypatch):
    import importlib

    import components.images as images

    monkeypatch.setenv("UNIPIC_IMAGE_TRAIN", "registry.example.com/unipic-train@sha256:abc")
    compiled = importlib.reload(images).task_env()
    monkeypatch.delenv("UNIPIC_IMAGE_TRAIN")
    for name, value in compiled.items():  # what the pod of a task with task_env() sees
        monkeypatch.setenv(name, value)
    assert importlib.reload(images).TRAIN == "registry.example.com/unipic-train@sha256:abc"
    monkeypatch.undo()
    importlib.reload(images)
