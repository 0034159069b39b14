"""Shared fixtures. Owned by the storage area; other areas may append fixtures at the end.

`store_config` / `services_config` / `seaweed` start ONE real SeaweedFS per test session through
`unipic.services.seaweedfs.up` on free loopback ports, with a temporary state dir and random credentials,
and stop it by PID at the end. `store` is an `ObjectStore` on it. Tests skip cleanly only when the `weed`
binary is missing.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("UNIPIC_NO_PROGRESS", "1")

from unipic.config.store import ServicesConfig, StoreConfig  # noqa: E402
from unipic.errors import ServiceError  # noqa: E402


@dataclass(frozen=True)
class Seaweed:
    store: StoreConfig
    services: ServicesConfig


def make_seaweed_configs(state_dir, **store_kwargs) -> tuple[StoreConfig, ServicesConfig]:
    """Configs for a fresh SeaweedFS on free ports (S3 port <= 55535: gRPC is port + 10000)."""
    from unipic.services.ports import find_free_http_ports

    s3, master, volume, filer, admin = find_free_http_ports(5)
    store = StoreConfig(
        endpoint=f"127.0.0.1:{s3}",
        access_key=f"test-{secrets.token_hex(4)}",
        secret_key=secrets.token_urlsafe(24),
        timeout_s=5.0,
        retries=1,
        cache_dir=state_dir / "cache",
        **store_kwargs,
    )
    services = ServicesConfig(
        state_dir=state_dir, master_port=master, volume_port=volume, filer_port=filer, admin_port=admin,
        startup_timeout_s=60.0, stop_timeout_s=15.0,
    )
    return store, services


def start_seaweed(state_dir, attempts: int = 3) -> tuple[StoreConfig, ServicesConfig]:
    """Start SeaweedFS on fresh free ports, retrying when another test session grabbed a port first."""
    from unipic.services import seaweedfs

    for attempt in range(attempts):
        store, services = make_seaweed_configs(state_dir / f"try{attempt}")
        try:
            seaweedfs.up(store, services)
            return store, services
        except ServiceError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _require_weed() -> None:
    from unipic.services.seaweedfs import weed_binary

    try:
        weed_binary()
    except ServiceError as exc:
        pytest.skip(f"SeaweedFS binary not available: {exc}")


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory) -> Seaweed:
    """A real SeaweedFS for the whole session (started and stopped through our library)."""
    _require_weed()
    from unipic.services import seaweedfs

    store, services = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    try:
        yield Seaweed(store=store, services=services)
    finally:
        seaweedfs.down(store, services)


@pytest.fixture(scope="session")
def store_config(seaweed: Seaweed) -> StoreConfig:
    return seaweed.store


@pytest.fixture(scope="session")
def services_config(seaweed: Seaweed) -> ServicesConfig:
    return seaweed.services


@pytest.fixture()
def seaweed_configs():
    """Factory for configs of an extra, private SeaweedFS: `store, services = seaweed_configs(state_dir)`.

    For tests that start/stop their own instance instead of using the session one."""
    _require_weed()
    return make_seaweed_configs


@pytest.fixture()
def store(store_config: StoreConfig):
    from unipic.storage import ObjectStore

    return ObjectStore(store_config)


@pytest.fixture()
def s3_prefix(store_config: StoreConfig, request) -> str:
    """A fresh s3:// prefix in the data bucket, unique per test."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")[:60]
    return f"s3://{store_config.buckets.data}/tests/{name}-{secrets.token_hex(3)}/"
