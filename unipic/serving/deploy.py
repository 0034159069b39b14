"""Deploying a model: locally (a detached model server on 127.0.0.1) or to a cluster (a KServe InferenceService).

Local: start the server, smoke-test it, record the endpoint. The server outlives the caller (PID file under the
services state dir; `unipic serve stop`).

Cluster: the InferenceService spec is built from `DeployConfig` (manifests/serving is generated from the same
builder, so the YAML and the deploy step cannot drift). A first deployment is created; an update is patched in as a
canary (`canaryTrafficPercent`, Serverless mode), waited on, smoke-tested on its own URL, then promoted (100%) or
rolled back (0%: traffic stays pinned on the previous revision). In RawDeployment mode, where KServe ignores
`canaryTrafficPercent` (kserve/kserve#5335), the update rolls out directly and a failed smoke test re-applies the
previous predictor spec. The KServe client is injected: `kserve.KServeClient()` in a pod, a recorder in tests.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from unipic.config.serve import DeployConfig, ServeConfig
from unipic.errors import ServiceError, UniPicError
from unipic.logging import get_logger

log = get_logger(__name__)

KSERVE_API = "serving.kserve.io/v1beta1"


class DeployError(UniPicError):
    """A deployment did not become ready, or its smoke test failed (after rolling back where possible)."""


# --- smoke tests ----------------------------------------------------------------------------------------------
@dataclass
class SmokeResult:
    ok: bool
    requests: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    model_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def smoke_test(endpoint: str, model_name: str, cfg: ServeConfig, n: int | None = None) -> SmokeResult:
    """`n` small text-to-image requests over V1 and one over V2: images must decode at the requested size, and
    the same seed must give the same image (a broken or non-deterministic model fails here, not in production)."""
    from unipic.serving.client import ServingClient

    n = n or cfg.deploy.smoke_requests
    res = SmokeResult(ok=True, requests=0)
    steps = min(2, cfg.limits.max_steps)
    prompts = ["a red circle", "a blue square on the left", "two green triangles"]
    try:
        with (
            ServingClient(endpoint, model_name, "v1", cfg.client) as v1,
            ServingClient(endpoint, model_name, "v2", cfg.client) as v2,
        ):
            first = None
            for i in range(n + 1):
                client = v2 if i == n else v1
                t0 = time.perf_counter()
                out = client.generate(
                    prompts[i % len(prompts)] if i < n else prompts[0], steps=steps, seed=1234
                )
                res.latencies_ms.append(round((time.perf_counter() - t0) * 1000, 2))
                res.requests += 1
                res.model_version = out.model_version
                if not out.images or out.images[0].size[0] <= 0:
                    res.errors.append(f"request {i}: no image in the answer")
                if i == 0:
                    first = out.images[0].tobytes()
                elif i == n and out.images[0].tobytes() != first:
                    res.errors.append("V1 and V2 gave different images for the same prompt and seed")
    except UniPicError as exc:
        res.errors.append(str(exc))
    res.ok = not res.errors
    return res


# --- local ----------------------------------------------------------------------------------------------------
def deploy_local(
    model: str, cfg: ServeConfig, preset: str = "ci", overrides: list[str] | None = None, replace: bool = True
) -> dict[str, Any]:
    """Start (or replace) the detached server `cfg.model_name`, smoke-test it, and return the endpoint record.
    A failed smoke test stops the new server and raises `DeployError`."""
    from unipic.serving.server import read_record, start_detached, stop_detached

    if replace and read_record(cfg.state_dir, cfg.model_name) is not None:
        log.info("replacing the running server '%s'", cfg.model_name)
        stop_detached(cfg.state_dir, cfg.model_name, cfg.stop_timeout_s)
    rec = start_detached(model, cfg, preset, overrides)
    smoke = smoke_test(rec.url, rec.name, cfg)
    if not smoke.ok:
        stop_detached(cfg.state_dir, cfg.model_name, cfg.stop_timeout_s)
        raise DeployError(f"smoke test of {rec.url} failed, server stopped: {'; '.join(smoke.errors)}")
    return {
        "mode": "local",
        "endpoint": rec.url,
        "model_name": rec.name,
        "pid": rec.pid,
        "model": rec.model,
        "model_version": rec.model_version,
        "decision": "deployed",
        "smoke": smoke.to_dict(),
        "v1_url": f"{rec.url}/v1/models/{rec.name}:predict",
        "v2_url": f"{rec.url}/v2/models/{rec.name}/infer",
    }


# --- the InferenceService spec --------------------------------------------------------------------------------
def build_inference_service(
    cfg: DeployConfig,
    storage_uri: str | None = None,
    model_name: str = "unipic",
    preset: str = "base",
    canary_percent: int | None = None,
) -> Any:
    """A `V1beta1InferenceService` for the custom UniPic predictor.

    `STORAGE_URI` on the container makes KServe run its storage-initializer with the ServiceAccount's S3 secret,
    so the model is in /mnt/models before the predictor starts (predictor_custom.go); the server then finds it
    there. `timeout` is raised over KServe's 60 s default; one GPU per pod, bounded autoscaling.
    """
    import kubernetes.client as k8s

    from unipic.serving.kserve_import import constants, kserve

    V1beta1InferenceService = kserve.models.V1beta1InferenceService
    V1beta1InferenceServiceSpec = kserve.models.V1beta1InferenceServiceSpec
    V1beta1PredictorSpec = kserve.models.V1beta1PredictorSpec

    uri = storage_uri or cfg.storage_uri
    limits: dict[str, str] = {"cpu": cfg.cpu, "memory": cfg.memory}
    if cfg.gpus:
        limits["nvidia.com/gpu"] = str(cfg.gpus)
    container = k8s.V1Container(
        name="kserve-container",
        image=cfg.image,
        command=["python", "-m", "unipic.serving.server"],
        args=[
            "--preset",
            preset,
            "--set",
            "serve.host=0.0.0.0",
            "--set",
            "serve.port=8080",
            "--set",
            f"serve.model_name={model_name}",
        ],
        env=[
            k8s.V1EnvVar(name="STORAGE_URI", value=uri),
            k8s.V1EnvVar(name="UNIPIC_NO_PROGRESS", value="1"),
            k8s.V1EnvVar(name="HF_HUB_OFFLINE", value="1"),
        ],
        ports=[k8s.V1ContainerPort(container_port=8080, name="http1", protocol="TCP")],
        resources=k8s.V1ResourceRequirements(requests=dict(limits), limits=dict(limits)),
        # 503 until the model is downloaded, loaded and warmed up: no traffic reaches a cold pod.
        readiness_probe=k8s.V1Probe(
            http_get=k8s.V1HTTPGetAction(path=f"/v2/models/{model_name}/ready", port=8080),
            period_seconds=10,
            failure_threshold=3,
        ),
    )
    annotations = {"serving.kserve.io/deploymentMode": cfg.deployment_mode}
    if cfg.deployment_mode == "Serverless":
        annotations["serving.kserve.io/enable-tag-routing"] = (
            "true"  # the canary gets its own URL to smoke-test
        )
        annotations["autoscaling.knative.dev/target"] = str(max(1, cfg.container_concurrency))
    predictor = V1beta1PredictorSpec(
        containers=[container],
        service_account_name=cfg.service_account,
        min_replicas=cfg.min_replicas,
        max_replicas=cfg.max_replicas,
        container_concurrency=cfg.container_concurrency,
        timeout=cfg.timeout_s,
        canary_traffic_percent=canary_percent,
        node_selector={"nvidia.com/gpu.present": "true"} if cfg.gpus else None,
        tolerations=[k8s.V1Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")]
        if cfg.gpus
        else None,
    )
    return V1beta1InferenceService(
        api_version=constants.KSERVE_V1BETA1,
        kind=constants.KSERVE_KIND_INFERENCESERVICE,
        metadata=k8s.V1ObjectMeta(
            name=cfg.name,
            namespace=cfg.namespace,
            annotations=annotations,
            labels={"app.kubernetes.io/part-of": "unipic", "app.kubernetes.io/component": "serve"},
        ),
        spec=V1beta1InferenceServiceSpec(predictor=predictor),
    )


def to_dict(obj: Any) -> dict[str, Any]:
    """An SDK object -> the JSON/YAML dict the API server receives (camelCase, None dropped)."""
    import kubernetes.client

    return kubernetes.client.ApiClient().sanitize_for_serialization(obj)


def service_account(cfg: DeployConfig) -> dict[str, Any]:
    """The predictor's ServiceAccount: lists the S3 secret and carries KServe's S3 annotations (the
    storage-initializer reads them from the secret or the ServiceAccount; s3_service_account.go)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": cfg.service_account,
            "namespace": cfg.namespace,
            "annotations": s3_annotations(cfg),
        },
        "secrets": [{"name": cfg.s3_secret}],
    }


def s3_annotations(cfg: DeployConfig) -> dict[str, str]:
    return {
        "serving.kserve.io/s3-endpoint": cfg.s3_endpoint,
        "serving.kserve.io/s3-usehttps": "1" if cfg.s3_use_https else "0",
        "serving.kserve.io/s3-verifyssl": "1" if cfg.s3_use_https else "0",
        "serving.kserve.io/s3-region": "us-east-1",
    }


def s3_secret_example(cfg: DeployConfig) -> dict[str, Any]:
    """The secret's shape (created out of band, never committed with values)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": cfg.s3_secret, "namespace": cfg.namespace, "annotations": s3_annotations(cfg)},
        "stringData": {"AWS_ACCESS_KEY_ID": "REPLACE_ME", "AWS_SECRET_ACCESS_KEY": "REPLACE_ME"},
    }


def render_manifests(cfg: DeployConfig, model_name: str = "unipic", preset: str = "base") -> dict[str, str]:
    """The files of manifests/serving: {filename: YAML text}."""
    import yaml

    header = "# Generated by `unipic serve manifests --preset {p}` from DeployConfig; edit configs/, not this file.\n"

    def dump(doc: dict[str, Any]) -> str:
        return header.format(p=preset) + yaml.safe_dump(doc, sort_keys=False)

    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": cfg.namespace,
        "resources": ["serviceaccount.yaml", "inferenceservice.yaml"],
    }
    return {
        "kustomization.yaml": dump(kustomization),
        "serviceaccount.yaml": dump(service_account(cfg)),
        "inferenceservice.yaml": dump(
            to_dict(build_inference_service(cfg, model_name=model_name, preset=preset))
        ),
        "s3-secret.example.yaml": dump(s3_secret_example(cfg)),
    }


# --- the cluster rollout --------------------------------------------------------------------------------------
class KServeAPI(Protocol):
    """The part of `kserve.KServeClient` the rollout uses (it returns plain dicts from the API server)."""

    def get(self, name: str, namespace: str | None = None, **kw: Any) -> dict[str, Any]: ...

    def create(self, inferenceservice: Any, namespace: str | None = None, **kw: Any) -> dict[str, Any]: ...

    def patch(
        self, name: str, inferenceservice: Any, namespace: str | None = None, **kw: Any
    ) -> dict[str, Any]: ...


def _get_or_none(api: KServeAPI, name: str, namespace: str) -> dict[str, Any] | None:
    try:
        return api.get(name, namespace=namespace)
    except RuntimeError as exc:  # KServeClient wraps ApiException in RuntimeError
        if "404" in str(exc) or "Not Found" in str(exc):
            return None
        raise


def _is_ready(obj: dict[str, Any]) -> bool:
    meta, status = obj.get("metadata", {}), obj.get("status") or {}
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return False
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    if conditions.get("Ready") != "True":
        return False
    predictor = (status.get("components") or {}).get("predictor") or {}
    created, ready = predictor.get("latestCreatedRevision"), predictor.get("latestReadyRevision")
    return created is None or created == ready


def _failure(obj: dict[str, Any]) -> str | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("status") == "False" and c.get("reason") in (
            "RevisionFailed",
            "InternalError",
            "ModelLoadFailed",
        ):
            return f"{c.get('type')}: {c.get('reason')}: {c.get('message', '')}"
    return None


def wait_ready(
    api: KServeAPI,
    name: str,
    namespace: str,
    timeout_s: float,
    poll_s: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    deadline = clock() + timeout_s
    while True:
        obj = api.get(name, namespace=namespace)
        if _is_ready(obj):
            return obj
        failed = _failure(obj)
        if failed:
            raise DeployError(f"InferenceService {namespace}/{name} failed: {failed}")
        if clock() >= deadline:
            raise DeployError(
                f"InferenceService {namespace}/{name} not ready after {timeout_s:.0f} s "
                "(serve.deploy.ready_timeout_s); `kubectl describe isvc` shows why"
            )
        sleep(poll_s)


def endpoint_urls(obj: dict[str, Any]) -> tuple[str, str]:
    """(main URL, URL of the newest revision): the `latest` traffic tag when tag routing is on, else the main."""
    status = obj.get("status") or {}
    main = (status.get("address") or {}).get("url") or status.get("url") or ""
    latest = main
    for t in ((status.get("components") or {}).get("predictor") or {}).get("traffic") or []:
        if t.get("tag") == "latest" and t.get("url"):
            latest = t["url"]
    return main, latest


@dataclass
class ClusterDeployment:
    name: str
    namespace: str
    action: str  # "created" | "canary" | "rollout"
    decision: str  # "promoted" | "rolled_back" | "failed"
    endpoint: str
    canary_url: str
    storage_uri: str
    smoke: dict[str, Any]
    calls: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def deploy_cluster(
    storage_uri: str,
    cfg: ServeConfig,
    api: KServeAPI,
    preset: str = "base",
    smoke: Callable[[str], SmokeResult] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ClusterDeployment:
    """Create or canary-update the InferenceService, wait, smoke-test the new revision, promote or roll back.
    Raises `DeployError` after rolling back, so a pipeline run shows the failure."""
    d = cfg.deploy
    smoke = smoke or (lambda url: smoke_test(url, cfg.model_name, cfg))
    calls: list[str] = []
    existing = _get_or_none(api, d.name, d.namespace)
    canary_mode = existing is not None and d.deployment_mode == "Serverless" and d.canary_percent < 100
    pct = d.canary_percent if canary_mode else None
    isvc = build_inference_service(d, storage_uri, cfg.model_name, preset, canary_percent=pct)
    if existing is None:
        api.create(isvc, namespace=d.namespace)
        action = "created"
    else:
        api.patch(d.name, isvc, namespace=d.namespace)
        action = "canary" if canary_mode else "rollout"
    calls.append(f"{action}: {storage_uri}" + (f" at {pct}%" if pct is not None else ""))
    try:
        obj = wait_ready(api, d.name, d.namespace, d.ready_timeout_s, d.poll_s, sleep, clock)
    except DeployError as exc:
        if existing is not None:
            _roll_back(api, d, existing, canary_mode, calls)
        raise DeployError(f"{exc}; rolled back" if existing is not None else str(exc)) from None
    main, latest = endpoint_urls(obj)
    result = smoke(latest if canary_mode else main)
    if result.ok:
        if canary_mode:
            api.patch(d.name, {"spec": {"predictor": {"canaryTrafficPercent": 100}}}, namespace=d.namespace)
            calls.append("promote: 100%")
            obj = wait_ready(api, d.name, d.namespace, d.ready_timeout_s, d.poll_s, sleep, clock)
            main, _ = endpoint_urls(obj)
        decision = "promoted"
    else:
        if existing is not None:
            _roll_back(api, d, existing, canary_mode, calls)
            decision = "rolled_back"
        else:
            decision = "failed"
    dep = ClusterDeployment(
        name=d.name,
        namespace=d.namespace,
        action=action,
        decision=decision,
        endpoint=main,
        canary_url=latest,
        storage_uri=storage_uri,
        smoke=result.to_dict(),
        calls=calls,
    )
    if decision != "promoted":
        raise DeployError(
            f"smoke test of {latest} failed ({'; '.join(result.errors)}); decision: {decision}. "
            f"Record: {dep.to_dict()}"
        )
    return dep


def _roll_back(
    api: KServeAPI, d: DeployConfig, existing: dict[str, Any], canary_mode: bool, calls: list[str]
) -> None:
    if canary_mode:
        api.patch(d.name, {"spec": {"predictor": {"canaryTrafficPercent": 0}}}, namespace=d.namespace)
        calls.append("rollback: 0% to the new revision (traffic pinned to the previous one)")
        return
    previous = {"spec": copy.deepcopy(existing.get("spec") or {})}
    api.patch(d.name, previous, namespace=d.namespace)
    calls.append("rollback: previous predictor spec re-applied")


def kserve_client() -> KServeAPI:
    """The real client (in-cluster config in a pod, else ~/.kube/config)."""
    try:
        from unipic.serving.kserve_import import kserve

        return kserve.KServeClient()
    except Exception as exc:  # noqa: BLE001 - kubernetes config errors have many types
        raise ServiceError(
            f"cannot reach a Kubernetes API ({type(exc).__name__}: {exc}); run in a pod with a "
            "ServiceAccount allowed to manage InferenceServices, or set KUBECONFIG"
        ) from None
