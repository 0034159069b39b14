"""How the pipeline runs on a Kubernetes cluster: applied at compile time, ignored by kfp.local."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from unipic.config.base import Section


class Toleration(Section):
    key: str
    operator: str = "Equal"
    value: str | None = None
    effect: str = "NoSchedule"


class StageResources(Section):
    cpu: str = "4"
    memory: str = "16Gi"
    gpus: int = Field(default=0, ge=0, le=16)
    nodes: int = Field(default=1, ge=1, description=">1 launches a Kubeflow Trainer TrainJob")


def _gpu_stage(gpus: int = 8) -> StageResources:
    return StageResources(cpu="32", memory="400Gi", gpus=gpus)


class ClusterConfig(Section):
    host: str = Field(default="", description="KFP API endpoint for `unipic submit` (e.g. https://kfp.example.com)")
    namespace: str = "unipic"
    experiment: str = "unipic2"
    s3_secret: str = Field(default="unipic-s3", description="Secret with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    s3_endpoint: str = Field(default="minio.unipic.svc:9000", description="store.endpoint inside the cluster")
    service_account: str = "unipic-pipeline"
    gpu_resource: str = "nvidia.com/gpu"
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    workspace_size: str = Field(default="250Gi", description="run-scoped PVC for large intermediates")
    retries: int = Field(default=2, ge=0, le=10)
    trainjob_runtime: str = Field(default="deepspeed-distributed",
                                  description="ClusterTrainingRuntime of multi-node stages (nodes > 1)")
    trainjob_launcher: Literal["mpirun", "torchrun"] = Field(
        default="mpirun", description="how the runtime starts processes: mpirun (MPI/DeepSpeed) or torchrun")
    trainjob_poll_s: float = Field(default=30.0, ge=0, description="seconds between TrainJob status reads")
    trainjob_timeout_s: float = Field(default=7 * 24 * 3600.0, gt=0, description="give up waiting after this")
    light: StageResources = Field(default_factory=StageResources)
    curate: StageResources = Field(default_factory=lambda: StageResources(cpu="16", memory="64Gi"))
    pretrain: StageResources = Field(default_factory=_gpu_stage)
    rl: StageResources = Field(default_factory=_gpu_stage)
    metaquery: StageResources = Field(default_factory=_gpu_stage)
    evaluate: StageResources = Field(default_factory=lambda: _gpu_stage(1))

    @model_validator(mode="before")
    @classmethod
    def _merge_stage_defaults(cls, data: Any) -> Any:
        """`--set cluster.pretrain.nodes=4` changes one field; the stage keeps its other defaults (8 GPUs)."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, field in cls.model_fields.items():
            if field.annotation is StageResources and isinstance(out.get(name), dict):
                out[name] = {**field.get_default(call_default_factory=True).model_dump(), **out[name]}
        return out
