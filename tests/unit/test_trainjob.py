"""TrainJob specs for multi-node training, and the submit-and-wait loop against a recorded API."""

import pytest

from unipic.errors import UniPicError
from unipic.orchestration.trainjob import assert_safetensors_only, build_trainjob, run_trainjob


def _job(**kw):
    args = dict(name="pretrain-abc", namespace="ml", image="reg/unipic-train@sha256:1", command=["unipic", "train",
                "pretrain"], num_nodes=4, gpus_per_node=8, s3_secret="team-s3", dataset_uri="s3://d/x",
                model_uri="s3://m/y")
    args.update(kw)
    return build_trainjob(**args)


def test_spec_shape_and_secret_refs():
    job = _job()
    assert job["apiVersion"] == "trainer.kubeflow.org/v1alpha1" and job["kind"] == "TrainJob"
    spec = job["spec"]
    assert spec["runtimeRef"]["name"] == "deepspeed-distributed"
    assert spec["trainer"]["numNodes"] == 4
    assert spec["trainer"]["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "8"
    refs = [e["valueFrom"]["secretKeyRef"]["name"] for e in spec["trainer"]["env"] if "valueFrom" in e]
    assert refs == ["team-s3", "team-s3"]
    assert spec["initializer"]["model"]["storageUri"] == "s3://m/y"


def test_bad_inputs():
    with pytest.raises(UniPicError, match="num_nodes"):
        _job(num_nodes=0)
    with pytest.raises(UniPicError, match="Secret"):
        _job(s3_secret="")


def test_safetensors_only():
    assert_safetensors_only(["transformer/diffusion_pytorch_model.safetensors", "model_index.json"])
    with pytest.raises(UniPicError, match="pytorch_model.bin"):
        assert_safetensors_only(["text_encoder/pytorch_model.bin"])


class RecordedApi:
    def __init__(self, states):
        self.states, self.created = list(states), []

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        self.created.append((group, version, namespace, plural, body["metadata"]["name"]))
        return body

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        state = self.states.pop(0)
        conds = [{"type": state, "status": "True", "message": "oom on node-2"}] if state else []
        return {"status": {"conditions": conds}}


def test_run_waits_for_complete():
    api = RecordedApi([None, "Created", "Complete"])
    run_trainjob(api, _job(), poll_s=1, sleep=lambda s: None)
    assert api.created == [("trainer.kubeflow.org", "v1alpha1", "ml", "trainjobs", "pretrain-abc")]
    assert api.states == []


def test_run_raises_on_failure_with_message():
    with pytest.raises(UniPicError, match="oom on node-2"):
        run_trainjob(RecordedApi([None, "Failed"]), _job(), poll_s=1, sleep=lambda s: None)


def test_run_times_out():
    with pytest.raises(UniPicError, match="did not finish"):
        run_trainjob(RecordedApi([None] * 10), _job(), poll_s=1, timeout_s=3, sleep=lambda s: None)


def test_stage_trainjob_runs_the_same_cli_on_every_node():
    from unipic.config import load_config
    from unipic.orchestration.trainjob import run_stage_trainjob

    cfg = load_config("base", ["cluster.pretrain.nodes=4", "cluster.s3_secret=team-s3"])
    api = RecordedApi(["Complete"])
    jobs = []
    api.create_namespaced_custom_object = lambda g, v, ns, p, body: jobs.append(body) or body
    run_stage_trainjob(cfg, "pretrain", "pretrain", "base", ["pretrain.output=s3://m/p"], image="img@sha256:1",
                       run_name="Run-7", api=api)
    spec = jobs[0]["spec"]
    assert jobs[0]["metadata"]["name"] == "run-7-pretrain" and spec["trainer"]["numNodes"] == 4
    assert spec["trainer"]["command"] == ["unipic", "train", "pretrain", "--preset", "base", "--set",
                                          "pretrain.output=s3://m/p"]
    assert spec["trainer"]["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "8"
