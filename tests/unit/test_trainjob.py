"""TrainJob specs for multi-node training, and the submit-and-wait loop against a recorded API."""

import pytest

from unipic.errors import UniPicError
from unipic.orchestration.trainjob import (
    assert_safetensors_only,
    build_trainjob,
    launch_command,
    run_trainjob,
    stage_command,
    trainjob_name,
)


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
    # fields of the current v1alpha1 TrainJob schema only (spec.labels was replaced by runtimePatches)
    assert set(spec) == {"runtimeRef", "trainer", "initializer"}


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


def test_initializers_read_the_store_with_the_secret_keys():
    init = _job(s3_endpoint_url="http://minio.ml.svc:9000")["spec"]["initializer"]
    for kind, uri in (("dataset", "s3://d/x"), ("model", "s3://m/y")):
        env = {e["name"]: e for e in init[kind]["env"]}
        assert init[kind]["storageUri"] == uri and env["ENDPOINT"]["value"] == "http://minio.ml.svc:9000"
        assert env["ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {"name": "team-s3", "key": "AWS_ACCESS_KEY_ID"}
    trainer_env = {e["name"] for e in _job()["spec"]["trainer"]["env"]}
    assert {"UNIPIC_S3_ACCESS_KEY", "UNIPIC_S3_SECRET_KEY"} <= trainer_env


def test_names_are_valid_stable_per_task_and_distinct_across_tasks():
    import re

    a, b = trainjob_name("rl-edit", "unipic2-x7-system-container-impl-1"), trainjob_name("rl-edit", "other-pod")
    assert a == trainjob_name("rl-edit", "unipic2-x7-system-container-impl-1") and a != b
    assert re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", a) and a.startswith("unipic-rl-edit-")


def test_an_existing_job_is_followed_not_resubmitted():
    class Conflict(Exception):
        status = 409

    api = RecordedApi(["Complete"])

    def create(*args):
        raise Conflict("already exists")

    api.create_namespaced_custom_object = create
    assert run_trainjob(api, _job(), poll_s=1, sleep=lambda s: None)["status"]["conditions"][0]["type"] == "Complete"


def test_failure_message_names_the_job_and_how_to_read_its_logs():
    with pytest.raises(UniPicError, match="jobset-name=pretrain-abc"):
        run_trainjob(RecordedApi(["Failed"]), _job(), poll_s=1, sleep=lambda s: None)


def _fake_mpirun(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mpirun").write_text('#!/bin/sh\necho "MASTER_ADDR=$MASTER_ADDR"\nfor a in "$@"; do echo "[$a]"; done\n')
    (bin_dir / "mpirun").chmod(0o755)
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("job-node-0-0.job slots=8\njob-node-0-1.job slots=8\n")
    return bin_dir, hostfile


def test_mpirun_launch_runs_the_command_unchanged_with_rank0_as_master(tmp_path):
    import os
    import subprocess

    bin_dir, hostfile = _fake_mpirun(tmp_path)
    command = stage_command("pretrain", "base", ["pretrain.sample_prompts=['a red circle']",
                                                 "pretrain.output=s3://m/p"])
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "OMPI_MCA_orte_default_hostfile": str(hostfile),
           "UNIPIC_S3_ACCESS_KEY": "k", "UNIPIC_CONFIG_DIR": "/opt/unipic/configs"}
    out = subprocess.run(launch_command(command), env=env, capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0] == "MASTER_ADDR=job-node-0-0.job"
    args = [line[1:-1] for line in lines[1:]]
    assert args[:2] == ["--hostfile", str(hostfile)]
    forwarded = {args[i + 1] for i, a in enumerate(args) if a == "-x"}
    assert {"MASTER_ADDR", "MASTER_PORT", "UNIPIC_S3_ACCESS_KEY", "UNIPIC_CONFIG_DIR"} <= forwarded
    assert args[args.index("unipic"):] == command


def test_torchrun_launch_and_unknown_launcher():
    assert launch_command(["unipic", "train", "rl-t2i"], "torchrun") == ["torchrun", "--no-python", "unipic", "train",
                                                                         "rl-t2i"]
    with pytest.raises(UniPicError, match="trainjob_launcher"):
        launch_command(["unipic"], "srun")


def test_outside_a_cluster_the_api_is_a_clear_error(monkeypatch):
    from unipic.orchestration.trainjob import kubernetes_api

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(UniPicError, match="nodes=1 to train in this process"):
        kubernetes_api()
