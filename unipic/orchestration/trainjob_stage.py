"""A training stage as a TrainJob: check that the pods can reach every input, submit, wait, and read back what
the nodes published at the stage's output URI (the URI the component then reports)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unipic.errors import ConfigError, UniPicError
from unipic.logging import get_logger
from unipic.orchestration.trainjob import (
    CustomObjectsApi,
    assert_safetensors_only,
    build_trainjob,
    kubernetes_api,
    launch_command,
    logs_hint,
    run_trainjob,
    stage_command,
    trainjob_name,
)

if TYPE_CHECKING:
    from unipic.orchestration.training_stage import TrainingStage

log = get_logger(__name__)


@dataclass(frozen=True)
class TrainJobRun:
    job: dict[str, Any]
    """The TrainJob as submitted."""
    metadata: dict[str, str]
    """The published model's manifest metadata: the lineage the nodes recorded."""
    record: dict[str, Any]
    """The published `unipic_lineage.json`: lineage plus the stage's numbers (steps, loss, scores)."""

    @property
    def where(self) -> str:
        return f"{self.job['metadata']['namespace']}/{self.job['metadata']['name']}"


def _check_inputs(stage: TrainingStage, cfg: Any) -> None:
    """Fail before submitting anything when the pods could not do the work."""
    from unipic.storage import is_s3_uri

    sec, key = stage.section_of(cfg), stage.section
    nodes = stage.resources_of(cfg).nodes
    if not sec.deepspeed.enabled:
        raise ConfigError(f"cluster.{stage.resources}.nodes={nodes} trains on several nodes but "
                          f"{key}.deepspeed.enabled is false: every process would train its own copy; set "
                          f"{key}.deepspeed.enabled=true "
                          f"(and {key}.deepspeed.backend=nccl on GPUs), or cluster.{stage.resources}.nodes=1")
    for field in ("output", stage.base_key, "dataset"):
        value = str(getattr(sec, field) or "")
        if not is_s3_uri(value):
            raise ConfigError(f"{key}.{field}='{value}' is not an s3:// URI: the TrainJob's pods cannot see this "
                              f"pod's files; publish it to the object store, or set cluster.{stage.resources}.nodes=1")


def _published_at(store: Any, uri: str) -> str | None:
    return store.read_manifest(uri).created_at if store.is_published(uri) else None


def run_stage_trainjob(stage: TrainingStage, cfg: Any, preset: str, sets: list[str], *, image: str, run_id: str = "",
                       api: CustomObjectsApi | None = None, store: Any = None,
                       sleep: Callable[[float], None] = time.sleep) -> TrainJobRun:
    """Run `unipic train <stage> --preset P --set ...` (the component's own config, output included) as a TrainJob
    with cluster.<resources>.nodes nodes and wait for it; raise naming the job if it fails or publishes nothing."""
    from unipic.training.io import LINEAGE_FILE
    from unipic.storage import ObjectStore, join_uri

    _check_inputs(stage, cfg)
    sec, res, cl = stage.section_of(cfg), stage.resources_of(cfg), cfg.cluster
    base, output = str(getattr(sec, stage.base_key)), str(sec.output)
    store = store if store is not None else ObjectStore(cfg.store)
    assert_safetensors_only(store.read_manifest(base).files)
    before = _published_at(store, output)
    job = build_trainjob(
        name=trainjob_name(stage.name, run_id or uuid.uuid4().hex), namespace=cl.namespace, image=image,
        command=launch_command(stage_command(stage.name, preset, sets), cl.trainjob_launcher), num_nodes=res.nodes,
        gpus_per_node=res.gpus, s3_secret=cl.s3_secret, runtime=cl.trainjob_runtime, dataset_uri=str(sec.dataset),
        model_uri=base, s3_endpoint_url=cfg.store.endpoint_url, cpu_per_node=res.cpu, memory_per_node=res.memory,
        labels={"app.kubernetes.io/part-of": "unipic", "unipic/stage": stage.name},
    )
    name = job["metadata"]["name"]
    run_trainjob(api if api is not None else kubernetes_api(), job, timeout_s=cl.trainjob_timeout_s,
                 poll_s=cl.trainjob_poll_s, sleep=sleep)
    after = _published_at(store, output)
    if after is None or after == before:
        raise UniPicError(f"TrainJob {name} completed but published no new model at {output}; its logs: "
                          f"{logs_hint(cl.namespace, name)}")
    manifest = store.read_manifest(output)
    record = store.read_json(join_uri(output, LINEAGE_FILE)) if LINEAGE_FILE in manifest.files else {}
    log.info("TrainJob %s published %s", name, output)
    return TrainJobRun(job, dict(manifest.metadata), record)
