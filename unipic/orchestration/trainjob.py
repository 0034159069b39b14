"""Multi-node training on a cluster: a Kubeflow Trainer v2 `TrainJob` (DeepSpeed/MPI runtime, or torchrun).

A training component whose stage asks for more than one node does not train in its own pod; it submits a
TrainJob running the same `unipic train ...` command (same preset and overrides, same output URI), waits and
streams its status, then checks that the model was published where the component reports it. Under the
`deepspeed-distributed` ClusterTrainingRuntime the command runs on node-0 behind `mpirun`, which starts one
process per GPU on every node (notes/anchors.md §A.4). The model initializer skips
`*.bin/*.pt/*.pth/*.h5/*.msgpack` by default, so weights must be safetensors: `assert_safetensors_only` checks
the base model's manifest before submitting.
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
# Env our StoreConfig reads <- key in the S3 Secret (the same mapping as the pipeline tasks get).
S3_ENV_FROM_SECRET = {"UNIPIC_S3_ACCESS_KEY": "AWS_ACCESS_KEY_ID", "UNIPIC_S3_SECRET_KEY": "AWS_SECRET_ACCESS_KEY"}
# Env the Trainer's S3 initializers read (pkg/initializers/types.py) <- key in the S3 Secret.
_INITIALIZER_ENV_FROM_SECRET = {"ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID", "SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY"}

# mpirun on node-0: rank 0 runs on the hostfile's first host, so that host is MASTER_ADDR for torch.distributed.
# sshd does not hand the pod's env to the ranks on other nodes: `-x` forwards ours (S3 credentials, config dir).
_MPI_LAUNCH = (
    'set -eu; hostfile="${OMPI_MCA_orte_default_hostfile:-/etc/mpi/hostfile}"; '
    'MASTER_ADDR="$(head -n 1 "$hostfile" | cut -d " " -f 1)"; MASTER_PORT="${MASTER_PORT:-29500}"; '
    'export MASTER_ADDR MASTER_PORT; fwd="-x MASTER_ADDR -x MASTER_PORT -x PATH"; '
    'for v in $(env | cut -d = -f 1 | grep -E "^(UNIPIC_|HF_|PYTHON)" || true); do fwd="$fwd -x $v"; done; '
    'exec mpirun --hostfile "$hostfile" $fwd "$@"'
)


def assert_safetensors_only(files: Iterable[str]) -> None:
    bad = sorted(f for f in files if f.endswith(_SKIPPED_BY_INITIALIZER))
    if bad:
        raise UniPicError(
            f"model has weight files the Trainer's S3 model initializer skips by default: {', '.join(bad[:5])}; "
            "save weights as safetensors (save_pretrained(..., safe_serialization=True))"
        )


def _secret_env(mapping: dict[str, str], secret: str) -> list[dict[str, Any]]:
    return [{"name": env, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}} for env, key in mapping.items()]


def _initializer(uri: str, s3_secret: str, endpoint_url: str | None) -> dict[str, Any]:
    env = ([{"name": "ENDPOINT", "value": endpoint_url}] if endpoint_url else [])
    return {"storageUri": uri, "env": env + _secret_env(_INITIALIZER_ENV_FROM_SECRET, s3_secret),
            "secretRef": {"name": s3_secret}}


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
    s3_endpoint_url: str | None = None,
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
    env_list = [{"name": k, "value": v} for k, v in sorted((env or {}).items())]
    env_list += _secret_env(S3_ENV_FROM_SECRET, s3_secret)
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
    }
    initializer = {kind: _initializer(uri, s3_secret, s3_endpoint_url)
                   for kind, uri in (("dataset", dataset_uri), ("model", model_uri)) if uri}
    if initializer:
        spec["initializer"] = initializer
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
        "spec": spec,
    }


def launch_command(command: list[str], launcher: str = "mpirun") -> list[str]:
    """Wrap `command` so every node's processes run it: mpirun from node-0 (MPI runtimes such as
    deepspeed-distributed), or torchrun on each node (torch runtimes set PET_* for it)."""
    if launcher == "torchrun":
        return ["torchrun", "--no-python", *command]
    if launcher == "mpirun":
        return ["bash", "-c", _MPI_LAUNCH, "unipic-mpirun", *command]
    raise UniPicError(f"unknown TrainJob launcher '{launcher}': use cluster.trainjob_launcher=mpirun or torchrun")


def trainjob_name(stage: str, run_id: str) -> str:
    """A valid, unique-per-task name (DNS-1035, at most 63 characters): the same task attempt (`run_id`, e.g.
    the KFP pod name) always gets the same name, so a restarted component follows its job instead of
    starting a second one."""
    import hashlib
    import re

    slug = re.sub(r"[^a-z0-9-]+", "-", stage.lower()).strip("-")[:40] or "stage"
    return f"unipic-{slug}-{hashlib.sha256(run_id.encode()).hexdigest()[:10]}"


class CustomObjectsApi(Protocol):
    def create_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str,
                                        body: dict[str, Any]) -> dict[str, Any]: ...

    def get_namespaced_custom_object(self, group: str, version: str, namespace: str, plural: str,
                                     name: str) -> dict[str, Any]: ...


def kubernetes_api() -> CustomObjectsApi:
    """The in-cluster custom-objects client (the component pod's ServiceAccount may create TrainJobs)."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException as exc:
        raise UniPicError(f"a multi-node stage submits a TrainJob, which needs to run inside a Kubernetes cluster "
                          f"({exc}); set cluster.<stage>.nodes=1 to train in this process") from None
    return client.CustomObjectsApi()


def _condition(obj: dict[str, Any]) -> str | None:
    for cond in obj.get("status", {}).get("conditions", []) or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            return cond["type"]
    return None


def logs_hint(namespace: str, name: str) -> str:
    return f"kubectl -n {namespace} logs -l jobset.sigs.k8s.io/jobset-name={name} --all-containers --prefix"


def _create(api: CustomObjectsApi, job: dict[str, Any]) -> None:
    meta = job["metadata"]
    try:
        api.create_namespaced_custom_object(GROUP, VERSION, meta["namespace"], PLURAL, job)
    except Exception as exc:
        if getattr(exc, "status", None) != 409:
            raise
        log.info("TrainJob %s/%s exists already (this task restarted): following it", meta["namespace"],
                 meta["name"])
        return
    log.info("submitted TrainJob %s/%s (%d nodes); its logs: %s", meta["namespace"], meta["name"],
             job["spec"]["trainer"]["numNodes"], logs_hint(meta["namespace"], meta["name"]))


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
    _create(api, job)
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
            raise UniPicError(f"TrainJob {meta['name']} failed: {'; '.join(msgs) or 'no message'}; its logs: "
                              f"{logs_hint(meta['namespace'], meta['name'])}")
        sleep(poll_s)
        waited += max(poll_s, 1e-3)
    raise UniPicError(f"TrainJob {meta['name']} did not finish within {timeout_s:.0f} s; it keeps running: watch it "
                      f"with `kubectl -n {meta['namespace']} get trainjob {meta['name']}` or delete it")


def stage_command(stage: str, preset: str, sets: list[str]) -> list[str]:
    """The `unipic train <stage>` command every node of a TrainJob runs (same config as the component)."""
    cmd = ["unipic", "train", stage, "--preset", preset]
    for s in sets:
        cmd += ["--set", s]
    return cmd
