"""manifests/serving: generated from DeployConfig, current, and valid against the kserve/kubernetes model classes."""

import copy
from pathlib import Path

import pytest
import yaml

from unipic.config import load_config
from unipic.serving.deploy import build_inference_service, render_manifests, to_dict
from unipic.serving.manifest_check import validate_manifest, validate_object

ROOT = Path(__file__).resolve().parents[2] / "manifests" / "serving"


def committed() -> dict[str, str]:
    return {p.name: p.read_text() for p in ROOT.glob("*.yaml")}


def test_committed_manifests_are_current():
    cfg = load_config("base").serve
    assert committed() == render_manifests(cfg.deploy, cfg.model_name, "base"), (
        "manifests/serving is stale: run `unipic serve manifests --preset base --out manifests/serving`"
    )


def test_every_manifest_validates():
    for name, text in committed().items():
        doc = yaml.safe_load(text)
        if doc["kind"] == "Kustomization":
            assert set(doc["resources"]) <= set(committed())
            assert "s3-secret.example.yaml" not in doc["resources"], (
                "secret values must not be applied from git"
            )
            continue
        assert validate_manifest(doc) == [], name


def test_inference_service_has_what_a_gpu_diffusion_predictor_needs():
    isvc = yaml.safe_load((ROOT / "inferenceservice.yaml").read_text())
    pred = isvc["spec"]["predictor"]
    c = pred["containers"][0]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert c["name"] == "kserve-container" and env["STORAGE_URI"].startswith("s3://")
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pred["timeout"] > 60 and pred["minReplicas"] >= 1 and pred["maxReplicas"] >= pred["minReplicas"]
    assert pred["serviceAccountName"] == "unipic-serve"
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/models/unipic/ready"
    sa = yaml.safe_load((ROOT / "serviceaccount.yaml").read_text())
    assert sa["secrets"] == [{"name": "unipic-s3"}]
    assert sa["metadata"]["annotations"]["serving.kserve.io/s3-usehttps"] == "0"


def test_canary_percent_is_in_the_spec_when_asked():
    cfg = load_config("base").serve.deploy
    doc = to_dict(build_inference_service(cfg, "s3://b/m", canary_percent=10))
    assert doc["spec"]["predictor"]["canaryTrafficPercent"] == 10 and validate_manifest(doc) == []


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda d: d["spec"]["predictor"].__setitem__("minReplica", 1), "minReplica: unknown field"),
        (
            lambda d: d["spec"]["predictor"]["containers"][0].__setitem__("imagee", "x"),
            "imagee: unknown field",
        ),
        (lambda d: d["spec"]["predictor"].__setitem__("timeout", "ten"), "expected int"),
        (lambda d: d["spec"]["predictor"].__setitem__("containers", {"name": "x"}), "expected a list"),
        (
            lambda d: d["spec"]["predictor"]["containers"][0]["env"][0].__setitem__("valu", "x"),
            "valu: unknown field",
        ),
        (lambda d: d["metadata"].__setitem__("annotations", ["a"]), "expected a mapping"),
    ],
)
def test_validator_rejects_typos_and_wrong_types(mutate, words):
    doc = copy.deepcopy(yaml.safe_load((ROOT / "inferenceservice.yaml").read_text()))
    mutate(doc)
    errors = validate_manifest(doc)
    assert any(words in e for e in errors), errors


def test_built_in_kinds_use_strict_kubernetes_schemas():
    sa = yaml.safe_load((ROOT / "serviceaccount.yaml").read_text())
    sa["secrets"][0]["nmae"] = "x"
    assert validate_manifest(sa)
    assert validate_object({"replicas": True}, "V1DeploymentSpec")
