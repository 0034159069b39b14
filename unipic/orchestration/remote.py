"""Submitting and following runs on a KFP cluster through `kfp.Client`.

The client is injected (`client_factory`) so the logic is tested against a recorded client; in production
it is `kfp.Client(host=..., namespace=...)`, which picks up in-cluster or kubeconfig credentials.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unipic.config.cluster import ClusterConfig
from unipic.errors import UniPicError
from unipic.logging import get_logger

log = get_logger(__name__)

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"}


@dataclass
class RunInfo:
    run_id: str
    name: str
    state: str
    created_at: str

    @classmethod
    def from_api(cls, run: Any) -> "RunInfo":
        return cls(run_id=run.run_id, name=run.display_name, state=str(run.state or "PENDING"),
                   created_at=str(run.created_at or ""))


def default_client(cluster: ClusterConfig) -> Any:
    if not cluster.host:
        raise UniPicError("no KFP host: pass --host URL or set cluster.host in the preset")
    import kfp

    return kfp.Client(host=cluster.host, namespace=cluster.namespace)


def submit(
    cluster: ClusterConfig,
    pipeline_yaml: Path,
    *,
    preset: str,
    overrides: list[str],
    run_name: str,
    client_factory: Callable[[ClusterConfig], Any] = default_client,
) -> RunInfo:
    """Create a run of the compiled pipeline. The in-cluster store endpoint is added to the overrides so
    tasks talk to MinIO; credentials reach them from the Secret compiled into the pipeline."""
    if not pipeline_yaml.is_file():
        raise UniPicError(f"{pipeline_yaml} does not exist; run `unipic compile` first")
    args = {"preset": preset, "overrides": [f"store.endpoint={cluster.s3_endpoint}", *overrides]}
    client = client_factory(cluster)
    result = client.create_run_from_pipeline_package(
        str(pipeline_yaml), arguments=args, run_name=run_name, experiment_name=cluster.experiment,
        namespace=cluster.namespace, service_account=cluster.service_account, enable_caching=True,
    )
    log.info("submitted run %s (%s) to %s", run_name, result.run_id, cluster.host)
    return RunInfo(run_id=result.run_id, name=run_name, state="PENDING", created_at="")


def list_runs(cluster: ClusterConfig, *, limit: int = 20,
              client_factory: Callable[[ClusterConfig], Any] = default_client) -> list[RunInfo]:
    client = client_factory(cluster)
    resp = client.list_runs(page_size=limit, sort_by="created_at desc", namespace=cluster.namespace)
    return [RunInfo.from_api(r) for r in (resp.runs or [])]


def follow(cluster: ClusterConfig, run_id: str, *, timeout_s: float = 7 * 24 * 3600, poll_s: float = 15.0,
           client_factory: Callable[[ClusterConfig], Any] = default_client,
           on_change: Callable[[RunInfo], None] | None = None,
           sleep: Callable[[float], None] = time.sleep) -> RunInfo:
    """Poll a run until it ends; report every state change; raise if it failed."""
    client = client_factory(cluster)
    waited, last = 0.0, None
    while True:
        info = RunInfo.from_api(client.get_run(run_id))
        if info.state != last and on_change:
            on_change(info)
        last = info.state
        if info.state in TERMINAL:
            if info.state != "SUCCEEDED":
                raise UniPicError(f"run {info.name} ({run_id}) ended {info.state}; see the KFP UI for task logs")
            return info
        if waited >= timeout_s:
            raise UniPicError(f"run {run_id} still {info.state} after {timeout_s:.0f} s")
        sleep(poll_s)
        waited += poll_s
