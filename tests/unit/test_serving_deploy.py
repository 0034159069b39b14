"""Cluster rollout against a recording stand-in for the KServe API: the specs sent and the calls made."""

import copy

import pytest

from unipic.config import load_config
from unipic.serving.deploy import DeployError, SmokeResult, deploy_cluster, to_dict
from unipic.serving.manifest_check import validate_manifest


def merge(base, patch):
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        elif v is None:
            out.pop(k, None)
        else:
            out[k] = copy.deepcopy(v)
    return out


class RecordingKServe:
    """Stores what is created/patched like the API server (merge patch, generation bump) and plays a controller
    that makes a new generation Ready after `ready_after` polls (or fails it)."""

    def __init__(self, existing=None, ready_after=2, fail=False):
        self.obj = existing
        self.calls = []
        self.ready_after = ready_after
        self.fail = fail
        self._polls = 0
        self.revision = 1 if existing else 0

    def _body(self, isvc):
        return isvc if isinstance(isvc, dict) else to_dict(isvc)

    def get(self, name, namespace=None, **kw):
        self.calls.append(("get", name, namespace))
        if self.obj is None:
            raise RuntimeError(
                "Exception when calling CustomObjectsApi->get_namespaced_custom_object: (404) "
                "Reason: Not Found"
            )
        self._polls += 1
        gen = self.obj["metadata"]["generation"]
        if self.fail and self._polls >= self.ready_after:
            self.obj["status"] = {
                "observedGeneration": gen,
                "conditions": [
                    {"type": "Ready", "status": "False", "reason": "RevisionFailed", "message": "OOMKilled"}
                ],
            }
        elif self._polls >= self.ready_after:
            rev = f"{name}-predictor-{self.revision:05d}"
            self.obj["status"] = {
                "observedGeneration": gen,
                "url": f"http://{name}.{namespace}.example.com",
                "address": {"url": f"http://{name}.{namespace}.svc.cluster.local"},
                "conditions": [{"type": "Ready", "status": "True"}],
                "components": {
                    "predictor": {
                        "latestCreatedRevision": rev,
                        "latestReadyRevision": rev,
                        "traffic": [
                            {
                                "tag": "latest",
                                "revisionName": rev,
                                "url": f"http://latest-{name}.{namespace}.example.com",
                                "percent": self.obj["spec"]["predictor"].get("canaryTrafficPercent", 100),
                            }
                        ],
                    }
                },
            }
        return copy.deepcopy(self.obj)

    def create(self, isvc, namespace=None, **kw):
        body = self._body(isvc)
        assert validate_manifest(body) == []
        self.calls.append(("create", namespace, body))
        self.obj = {**copy.deepcopy(body), "metadata": {**body["metadata"], "generation": 1}}
        self.revision, self._polls = 1, 0
        return copy.deepcopy(self.obj)

    def patch(self, name, isvc, namespace=None, **kw):
        body = self._body(isvc)
        self.calls.append(("patch", name, namespace, body))
        gen = self.obj["metadata"]["generation"] + 1
        self.obj = merge(self.obj, body)
        self.obj["metadata"]["generation"] = gen
        self.revision += 1 if "containers" in body.get("spec", {}).get("predictor", {}) else 0
        self._polls = 0
        return copy.deepcopy(self.obj)

    def verbs(self):
        return [c[0] for c in self.calls if c[0] != "get"]


CFG = load_config("base", ["serve.deploy.poll_s=1", "serve.deploy.ready_timeout_s=30"]).serve


def smoke(ok=True, seen=None):
    def run(url):
        if seen is not None:
            seen.append(url)
        return SmokeResult(ok=ok, requests=3, errors=[] if ok else ["HTTP 500 on request 0"])

    return run


def existing_service():
    api = RecordingKServe()
    deploy_cluster("s3://unipic-models/v1", CFG, api, smoke=smoke(), sleep=lambda s: None)
    api.calls.clear()
    return api


def test_first_deploy_creates_without_canary():
    api = RecordingKServe()
    seen = []
    dep = deploy_cluster("s3://unipic-models/v1", CFG, api, smoke=smoke(seen=seen), sleep=lambda s: None)
    assert api.verbs() == ["create"] and dep.action == "created" and dep.decision == "promoted"
    body = api.calls[1][2]
    pred = body["spec"]["predictor"]
    assert "canaryTrafficPercent" not in pred
    assert pred["containers"][0]["env"][0] == {"name": "STORAGE_URI", "value": "s3://unipic-models/v1"}
    assert seen == ["http://unipic.unipic.svc.cluster.local"] and dep.endpoint == seen[0]


def test_update_is_a_canary_smoke_tested_on_its_own_url_then_promoted():
    api = existing_service()
    seen = []
    dep = deploy_cluster("s3://unipic-models/v2", CFG, api, smoke=smoke(seen=seen), sleep=lambda s: None)
    patches = [c[3] for c in api.calls if c[0] == "patch"]
    assert dep.action == "canary" and dep.decision == "promoted"
    assert patches[0]["spec"]["predictor"]["canaryTrafficPercent"] == CFG.deploy.canary_percent
    assert patches[0]["spec"]["predictor"]["containers"][0]["env"][0]["value"] == "s3://unipic-models/v2"
    assert patches[1] == {"spec": {"predictor": {"canaryTrafficPercent": 100}}}
    assert seen == ["http://latest-unipic.unipic.example.com"]
    assert api.obj["spec"]["predictor"]["canaryTrafficPercent"] == 100


def test_failed_smoke_rolls_the_canary_back_and_raises():
    api = existing_service()
    with pytest.raises(DeployError, match="rolled_back"):
        deploy_cluster("s3://unipic-models/bad", CFG, api, smoke=smoke(ok=False), sleep=lambda s: None)
    patches = [c[3] for c in api.calls if c[0] == "patch"]
    assert len(patches) == 2 and patches[1] == {"spec": {"predictor": {"canaryTrafficPercent": 0}}}


def test_revision_that_never_gets_ready_is_rolled_back():
    api = existing_service()
    api.fail = True
    with pytest.raises(DeployError, match="RevisionFailed.*OOMKilled.*rolled back"):
        deploy_cluster("s3://unipic-models/oom", CFG, api, smoke=smoke(), sleep=lambda s: None)
    assert (
        api.verbs() == ["patch", "patch"]
        and api.calls[-1][3]["spec"]["predictor"]["canaryTrafficPercent"] == 0
    )


def test_timeout_waiting_for_ready():
    api = RecordingKServe(ready_after=10**9)
    ticks = iter(range(0, 10**6, 5))
    with pytest.raises(DeployError, match="not ready after 30 s"):
        deploy_cluster("s3://m", CFG, api, smoke=smoke(), sleep=lambda s: None, clock=lambda: next(ticks))


def test_raw_deployment_rolls_out_directly_and_restores_previous_spec_on_failure():
    cfg = load_config("base", ["serve.deploy.deployment_mode=RawDeployment", "serve.deploy.poll_s=1"]).serve
    api = RecordingKServe()
    deploy_cluster("s3://unipic-models/v1", cfg, api, smoke=smoke(), sleep=lambda s: None)
    before = copy.deepcopy(api.obj["spec"])
    api.calls.clear()
    with pytest.raises(DeployError, match="rolled_back"):
        deploy_cluster("s3://unipic-models/v2", cfg, api, smoke=smoke(ok=False), sleep=lambda s: None)
    patches = [c[3] for c in api.calls if c[0] == "patch"]
    assert "canaryTrafficPercent" not in patches[0]["spec"]["predictor"]
    assert patches[1] == {"spec": before}
    assert api.obj["spec"]["predictor"]["containers"][0]["env"][0]["value"] == "s3://unipic-models/v1"
