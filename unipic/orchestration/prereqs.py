"""Fail-fast checks that run before any stage does real work (ilab-on-ocp's prerequisites step).

A run that would die an hour in because a bucket is missing or a dataset version does not exist should
die in seconds instead, with every problem listed at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from unipic.config.store import StoreConfig
from unipic.errors import UniPicError
from unipic.logging import get_logger

log = get_logger(__name__)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def _run(name: str, fn: Callable[[], str]) -> Check:
    try:
        return Check(name, True, fn())
    except UniPicError as exc:
        return Check(name, False, str(exc))


def check_prerequisites(
    store_cfg: StoreConfig,
    *,
    inputs: dict[str, str] | None = None,
    extra: dict[str, Callable[[], str]] | None = None,
) -> list[Check]:
    """Object store reachable with these credentials, configured buckets present, every named input
    (s3:// prefix or local path) published with a manifest, plus caller-supplied checks."""
    from unipic.storage import ObjectStore
    from unipic.storage.uri import is_s3_uri

    store = ObjectStore(store_cfg)

    def reachable() -> str:
        store.check()
        return f"{store_cfg.endpoint} answers and accepts access key '{store_cfg.access_key.get_secret_value()}'"

    checks = [_run("object store", reachable)]
    if checks[0].ok:
        def buckets() -> str:
            have = set(store.list_buckets())
            want = set(store_cfg.buckets.model_dump().values())
            missing = sorted(want - have)
            if missing:
                raise UniPicError(f"missing buckets: {', '.join(missing)} (run `unipic services up` or create them)")
            return f"buckets present: {', '.join(sorted(want))}"

        checks.append(_run("buckets", buckets))
    for name, uri in (inputs or {}).items():
        if not uri:
            continue

        def published(uri: str = uri) -> str:
            if is_s3_uri(uri):
                if not store.is_published(uri):
                    raise UniPicError(f"{uri} is not published (no manifest.json): incomplete or missing")
                return f"{uri} published ({store.read_manifest(uri).total_sha256[:12]})"
            from pathlib import Path

            if not (Path(uri) / "manifest.json").is_file():
                raise UniPicError(f"{uri} has no manifest.json: incomplete or missing")
            return f"{uri} present"

        checks.append(_run(f"input {name}", published))
    for name, fn in (extra or {}).items():
        checks.append(_run(name, fn))
    return checks


def assert_prerequisites(checks: list[Check]) -> None:
    for c in checks:
        log.info("prerequisite %-14s %s: %s", c.name, "ok" if c.ok else "FAILED", c.detail)
    failed = [c for c in checks if not c.ok]
    if failed:
        raise UniPicError("prerequisites failed:\n  " + "\n  ".join(f"{c.name}: {c.detail}" for c in failed))
