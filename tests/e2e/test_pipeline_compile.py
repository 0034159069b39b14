"""The compiled pipeline: valid IR, current in git, and carrying the cluster settings from config."""

from pathlib import Path

import pytest
import yaml

from pipelines.unipic2 import build_pipeline
from unipic.config import load_config
from unipic.errors import UniPicError
from unipic.orchestration.compile import compile_pipeline, validate_ir

COMMITTED = Path(__file__).resolve().parents[2] / "pipelines" / "compiled" / "unipic2.yaml"


def test_committed_yaml_is_current(tmp_path):
    fresh = compile_pipeline(build_pipeline(load_config("base").cluster), tmp_path / "p.yaml").read_text()
    assert COMMITTED.read_text() == fresh, "pipelines/compiled/unipic2.yaml is stale: run `unipic compile`"


def test_validator_catches_typos(tmp_path):
    text = COMMITTED.read_text().replace("executorLabel:", "executorLabell:", 1)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(UniPicError, match="executorLabell"):
        validate_ir(bad)


def _compiled(tmp_path, overrides):
    cluster = load_config("base", overrides).cluster
    path = compile_pipeline(build_pipeline(cluster), tmp_path / "c.yaml")
    docs = list(yaml.safe_load_all(path.read_text()))
    return docs[0], docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_cluster_settings_reach_every_task(tmp_path):
    spec, execs = _compiled(tmp_path, ["cluster.s3_secret=team-s3", "cluster.node_selector={pool: h100}",
                                       "cluster.tolerations=[{key: nvidia.com/gpu, operator: Exists}]"])
    assert set(execs) == set(spec["deploymentSpec"]["executors"]), "a task lacks kubernetes settings"
    for name, cfg in execs.items():
        assert {s["secretName"] for s in cfg["secretAsEnv"]} == {"team-s3"}, name
        envs = {m["envVar"] for s in cfg["secretAsEnv"] for m in s["keyToEnv"]}
        assert envs == {"UNIPIC_S3_ACCESS_KEY", "UNIPIC_S3_SECRET_KEY"}
        assert cfg["nodeSelector"]["labels"] == {"pool": "h100"}
        assert cfg["tolerations"][0]["key"] == "nvidia.com/gpu"
    resources = [e["container"].get("resources", {}) for e in spec["deploymentSpec"]["executors"].values()]
    assert all(r.get("resourceCpuLimit") for r in resources)


def test_multi_node_stage_task_only_submits_and_carries_the_images(tmp_path, monkeypatch):
    monkeypatch.setenv("UNIPIC_IMAGE_TRAIN", "registry.example/unipic-train@sha256:abc")
    spec, _ = _compiled(tmp_path, ["cluster.pretrain.nodes=4"])
    execs = spec["deploymentSpec"]["executors"]
    pretrain = next(e for name, e in execs.items() if "pretrain" in name)["container"]
    rl = next(e for name, e in execs.items() if "rl-edit" in name)["container"]
    assert "accelerator" not in pretrain.get("resources", {}), "the submitting pod holds the stage's GPUs"
    assert rl["resources"]["accelerator"], "a one-node training stage keeps its GPUs"
    for name, e in execs.items():
        env = {v["name"]: v["value"] for v in e["container"].get("env", [])}
        assert env.get("UNIPIC_IMAGE_TRAIN") == "registry.example/unipic-train@sha256:abc", name
