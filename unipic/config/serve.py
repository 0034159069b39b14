"""Serving: the KServe predictor's limits and batching, the HTTP client, and how a model is deployed.

Limits exist because one diffusion request can hold a GPU for a minute: every bound here is enforced per request
with a 4xx naming the field and the limit (docs/serving.md), so a bad request never reaches the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from unipic.config.base import Section


class LimitsConfig(Section):
    """Per-request bounds. `max_payload_bytes` caps the raw HTTP body before it is parsed (413)."""

    max_side: int = Field(default=64, ge=8, description="largest width or height in pixels")
    max_steps: int = Field(default=50, ge=1, description="largest num_inference_steps")
    max_images: int = Field(default=4, ge=1, description="largest num_images per instance")
    max_instances: int = Field(default=8, ge=1, description="largest number of V1 instances in one request")
    max_prompt_chars: int = Field(default=1000, ge=1)
    max_guidance: float = Field(default=20.0, gt=0)
    max_new_tokens: int = Field(default=64, ge=1, description="largest answer length for understanding")
    max_image_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, description="decoded source image bytes")
    max_payload_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, description="raw request body bytes")

    @model_validator(mode="after")
    def _payload_holds_an_image(self) -> LimitsConfig:
        if self.max_payload_bytes < self.max_image_bytes:
            raise ValueError(
                "max_payload_bytes must be >= max_image_bytes (the image travels inside the body)"
            )
        return self


class BatchingConfig(Section):
    """Micro-batching: compatible requests (same task, size, steps, guidance) share one pipeline call."""

    enabled: bool = True
    max_batch_images: int = Field(default=8, ge=1, description="images per pipeline call")
    max_wait_ms: float = Field(default=10.0, ge=0, description="how long the first request waits for company")
    max_queue: int = Field(
        default=256, ge=1, description="requests waiting; beyond this the server answers 429"
    )


class DefaultsConfig(Section):
    """What a request gets when it leaves a field out."""

    num_inference_steps: int = Field(default=20, ge=1)
    guidance_scale: float = Field(default=4.0, ge=0)
    edit_guidance_scale: float | None = Field(
        default=None, ge=0, description="text guidance for edit requests that leave it out; None: guidance_scale"
    )
    max_new_tokens: int = Field(default=16, ge=1)


class ClientConfig(Section):
    timeout_s: float = Field(default=120.0, gt=0, description="per-request read timeout")
    connect_timeout_s: float = Field(default=5.0, gt=0)
    retries: int = Field(default=3, ge=0, le=20, description="retries on connection errors, 429 and 503")
    backoff_s: float = Field(default=0.5, ge=0, description="first retry delay; doubles each retry")


class DeployConfig(Section):
    """The cluster InferenceService (manifests/serving is generated from these values) and the canary rollout."""

    namespace: str = "unipic"
    name: str = "unipic"
    image: str = "ghcr.io/unipic/unipic-serve:0.1.0"
    deployment_mode: Literal["Serverless", "RawDeployment"] = Field(
        default="Serverless", description="canaryTrafficPercent works in Serverless (Knative) mode only"
    )
    service_account: str = "unipic-serve"
    s3_secret: str = Field(default="unipic-s3", description="created out of band (manifests/platform)")
    s3_endpoint: str = "minio-service.unipic:9000"
    s3_use_https: bool = False
    storage_uri: str = Field(
        default="s3://unipic-models/unipic/latest", description="the storage-initializer's"
    )
    gpus: int = Field(default=1, ge=0)
    cpu: str = "4"
    memory: str = "32Gi"
    min_replicas: int = Field(default=1, ge=0, description="1: no scale-to-zero cold start on a GPU node")
    max_replicas: int = Field(default=4, ge=1)
    container_concurrency: int = Field(default=4, ge=0, description="in-flight requests per pod (batched)")
    timeout_s: int = Field(
        default=600, ge=1, description="request timeout; KServe's default 60 s is too short"
    )
    canary_percent: int = Field(default=10, ge=0, le=100)
    ready_timeout_s: float = Field(default=900.0, gt=0, description="wait for the new revision to be ready")
    poll_s: float = Field(default=10.0, gt=0)
    smoke_requests: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _replicas(self) -> DeployConfig:
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas ({self.max_replicas}) < min_replicas ({self.min_replicas})")
        return self


class ServeConfig(Section):
    host: str = Field(default="127.0.0.1", description="0.0.0.0 only inside a container")
    port: int = Field(default=8080, ge=0, le=65535, description="0 picks a free port")
    model_name: str = Field(default="unipic", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    warmup: bool = Field(default=True, description="one tiny generation before reporting ready")
    startup_timeout_s: float = Field(
        default=600.0, gt=0, description="detached start: wait this long for ready"
    )
    stop_timeout_s: float = Field(default=15.0, gt=0)
    state_dir: Path = Field(default=Path(".unipic/services"), description="PID files, endpoint records, logs")
    torch_threads: int = Field(default=0, ge=0, description="0 leaves torch's default")
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    defaults: DefaultsConfig = Field(default_factory=DefaultsConfig)
    client: ClientConfig = Field(default_factory=ClientConfig)
    deploy: DeployConfig = Field(default_factory=DeployConfig)
