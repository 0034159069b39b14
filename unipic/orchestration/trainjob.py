"""Multi-node training on a cluster: a Kubeflow Trainer v2 `TrainJob` on the DeepSpeed runtime.

A training component that asks for more than one node does not train in its own pod; it submits a
TrainJob running the same `unipic train ...` command on every node, then waits and streams status. The
`deepspeed-distributed` ClusterTrainingRuntime launches it with mpirun (MPI launcher + sshd nodes,
notes/anchors.md §A.4). The model initializer skips `*.bin/*.pt/*.pth/*.h5/*.msgpack` by default, so
weights must be safetensors: `assert_safetensors_only` checks a model manifest before submitting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from unipic.errors import UniPicError
from unipic.logging import get_logger

log = get_logger(__name__)

GROUP, VERSION, PLURAL = "trainer.kubeflow.org", "v1alpha1", "trainjobs"
_SKIPPED_BY_INITIALIZER = (".bin", ".pt", ".pth", ".h5", ".msgpack")


def assert_safetensors_only(files: Iterable[str]) -> None:
    bad = sorted(f for f in files if f.endswith(_SKIPPED_BY_INITIALIZER))
    if bad:
        raise UniPicError(
            f"model has weight files the Trainer's S3 model initializer skips by default: {', '.join(bad[:5])}; "
            "save weights as safetensors (save_pretrained(..., safe_serialization=True))"
        )


def build_trainjob(
    *,
    name: str,
    namespace: str,
    image: str,
    command: list[str],
    num_nodes: int,
    gpus_per_node: int,
    s3_secret: str,
    runtime: str = "deepspeed-distributed",
    env: dict[str, str] | None = None,
    dataset_uri: str | None = None,
    model_uri: str | None = None,
    cpu_per_node: str = "16",
    memory_per_node: str = "200Gi",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The TrainJob object (as a dict ready for the Kubernetes API). S3 credentials come from a Secret
    named by the caller (config), never a hard-coded name."""
    if num_nodes < 1:
        raise UniPicError(f"num_nodes must be >= 1, got {num_nodes}")
    if gpus_per_node < 0:
        raise UniPicError(f"gpus_per_node must be >= 0, got {gpus_per_node}")
    if not s3_secret:
        raise UniPicError("a Secret name holding the S3 credentials is required (store secret in config)")
    env_list: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted((env or {}).items())]
    for var, key in (("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"), ("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY")):
        env_list.append({"name": var, "valueFrom": {"secretKeyRef": {"name": s3_secret, "key": key}}})
    limits = {"cpu": cpu_per_node, "memory": memory_per_node}
    if gpus_per_node:
        limits["nvidia.com/gpu"] = str(gpus_per_node)
    spec: dict[str, Any] = {
        "runtimeRef": {"name": runtime, "apiGroup": GROUP, "kind": "ClusterTrainingRuntime"},
        "trainer": {
            "image": image,
            "command": list(command),
            "numNodes": num_nodes,
            "env": env_list,
            "resourcesPerNode": {"limits": limits, "requests": dict(limits)},
        },
        "labels": dict(labels or {}),
    }
    initializer: dict[str, Any] = {}
    if dataset_uri:
        initializer["dataset"] = {"storageUri": dataset_uri, "secretRef": {"name": s3_secret}}
    if model_uri:
        initializer["model"] = {"storageUri": model_uri, "secretRef": {"name": s3_secret}}
    if initializer:
        spec["initializer"] = initializer
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
        "spec": spec,
    }


class CustomObjectsApi(Protocol):
    def create_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str,
                                        body: dict[str, Any]) -> dict[str, Any]: ...

    def get_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str,
                                     name: str) -> dict[str, Any]: ...


def _condition(obj: dict[str, Any]) -> str | None:
    for cond in obj.get("status", {}).get("conditions", []) or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            return cond["type"]
    return None


def run_trainjob(
    api: CustomObjectsApi,
    job: dict[str, Any],
    *,
    timeout_s: float = 7 * 24 * 3600,
    poll_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Create the TrainJob, then poll until Complete (return it) or Failed/timeout (raise)."""
    meta = job["metadata"]
    api.create_namespaced_custom_object(GROUP, VERSION, meta["namespace"], PLURAL, job)
    log.info("submitted TrainJob %s/%s (%d nodes)", meta["namespace"], meta["name"], job["spec"]["trainer"]["numNodes"])
    waited, last = 0.0, None
    while waited <= timeout_s:
        obj = api.get_namespaced_custom_object(GROUP, VERSION, meta["namespace"], PLURAL, meta["name"])
        conds = [c.get("type") for c in obj.get("status", {}).get("conditions", []) or [] if c.get("status") == "True"]
        if conds != last:
            log.info("TrainJob %s: %s", meta["name"], ", ".join(conds) or "pending")
            last = conds
        state = _condition(obj)
        if state == "Complete":
            return obj
        if state == "Failed":
            msgs = [c.get("message", "") for c in obj["status"]["conditions"] if c.get("type") == "Failed"]
            raise UniPicError(f"TrainJob {meta['name']} failed: {'; '.join(msgs) or 'no message'}")
        sleep(poll_s)
        waited += poll_s
    raise UniPicError(f"TrainJob {meta['name']} did not finish within {timeout_s:.0f} s")


def stage_command(stage: str, preset: str, sets: list[str]) -> list[str]:
    """The `unipic train <stage>` command every node of a TrainJob runs (same config as the component)."""
    cmd = ["unipic", "train", stage, "--preset", preset]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def run_stage_trainjob(cfg: Any, stage: str, resources_key: str, preset: str, sets: list[str], *,
                       image: str, run_name: str, api: CustomObjectsApi | None = None) -> dict[str, Any]:
    """Run a training stage as a multi-node TrainJob (cluster.<resources_key>.nodes > 1) and wait for it. The
    stage publishes its model to the URI in `sets`, exactly as the single-node component does."""
    res = getattr(cfg.cluster, resources_key)
    name = f"{run_name}-{stage}"[:63].rstrip("-").lower()
    job = build_trainjob(
        name=name, namespace=cfg.cluster.namespace, image=image, command=stage_command(stage, preset, sets),
        num_nodes=res.nodes, gpus_per_node=res.gpus, s3_secret=cfg.cluster.s3_secret,
        runtime=cfg.cluster.trainjob_runtime, cpu_per_node=res.cpu, memory_per_node=res.memory,
        labels={"app.kubernetes.io/part-of": "unipic", "unipic/stage": stage},
    )
    if api is None:
        from kubernetes import client, config

        config.load_incluster_config()
        api = client.CustomObjectsApi()
    return run_trainjob(api, job)
