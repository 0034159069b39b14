"""Platform manifests (MinIO, Feast + Redis, RBAC) are valid Kubernetes objects, checked offline."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2] / "manifests" / "platform"
K8S_VERSION = "1.32"


def _resources(kdir: Path) -> list[dict]:
    """Follow kustomization `resources:` recursively, like `kustomize build` minus patches."""
    kust = yaml.safe_load((kdir / "kustomization.yaml").read_text())
    docs = []
    for res in kust.get("resources", []):
        path = kdir / res
        if path.is_dir():
            docs += _resources(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_every_resource_validates_strictly():
    docs = _resources(ROOT)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "PersistentVolumeClaim", "ServiceAccount", "Role", "RoleBinding"} <= kinds
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_validator_rejects_typos():
    doc = yaml.safe_load((ROOT / "minio" / "service.yaml").read_text())
    doc["spec"]["selektor"] = doc["spec"].pop("selector")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_rbac_allows_exactly_what_the_pipeline_creates():
    rules = next(d for d in _resources(ROOT) if d["kind"] == "Role")["rules"]
    groups = {g for r in rules for g in r["apiGroups"]}
    assert groups == {"serving.kserve.io", "trainer.kubeflow.org", ""}
    assert all("*" not in r["verbs"] for r in rules)


def test_secrets_are_referenced_not_embedded():
    docs = _resources(ROOT)
    assert not [d for d in docs if d["kind"] == "Secret"], "credentials must not live in git"
