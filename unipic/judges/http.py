"""One retry policy for every judge client: bounded retries with exponential backoff on timeouts,
connection errors, 429 and 5xx; no retry on other 4xx (a wrong URL, key or model will not fix itself)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import httpx

from unipic.judges.errors import JudgeError
from unipic.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0

    def delay(self, attempt: int) -> float:
        return min(self.max_backoff_s, self.backoff_s * (2 ** attempt))


class TransportFailure(Exception):
    """A request that failed after all retries; `kind` is one of verdict.FAILURE_KINDS."""

    def __init__(self, kind: str, detail: str, attempts: int):
        super().__init__(detail)
        self.kind, self.detail, self.attempts = kind, detail, attempts


def _retry_after(value: str | None) -> float:
    """Seconds from a Retry-After header (rate-limited APIs send it with 429/503); 0 when absent or a date."""
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


def api_key_from_env(name: str | None) -> str | None:
    return os.environ.get(name) if name else None


def post_json(
    client: httpx.Client, url: str, payload: dict[str, Any], policy: RetryPolicy,
    headers: dict[str, str] | None = None,
) -> tuple[dict[str, Any], int]:
    """POST JSON with retries. Returns (response JSON, attempts). Raises TransportFailure when retries are
    exhausted, JudgeError on a non-retryable client error (401/403/404/400: the setup is wrong)."""
    last_kind, last_detail = "connection", ""
    hint = 0.0
    for attempt in range(policy.max_retries + 1):
        if attempt:
            time.sleep(max(policy.delay(attempt - 1), min(hint, policy.max_backoff_s)))
            hint = 0.0
        try:
            resp = client.post(url, json=payload, headers=headers)
        except httpx.TimeoutException as exc:
            last_kind, last_detail = "timeout", f"no answer from {url} within the timeout ({type(exc).__name__})"
            continue
        except httpx.TransportError as exc:
            last_kind, last_detail = "connection", f"cannot reach {url}: {exc}"
            continue
        if resp.status_code == 429 or resp.status_code >= 500:
            hint = _retry_after(resp.headers.get("Retry-After"))
            last_kind = "http_429" if resp.status_code == 429 else "http_5xx"
            last_detail = f"{url} answered HTTP {resp.status_code}: {resp.text[:200]}"
            continue
        if resp.status_code in (401, 403):
            raise JudgeError(
                f"{url} refused the credentials (HTTP {resp.status_code}); set the API key in the environment "
                "variable named by the judge's api_key_env"
            )
        if resp.status_code == 404:
            raise JudgeError(
                f"{url} answered 404: wrong base URL or model name ({resp.text[:200]}); check the judge's "
                "base_url (up to and including /v1) and model"
            )
        if resp.status_code >= 400:
            raise TransportFailure("http_4xx", f"{url} answered HTTP {resp.status_code}: {resp.text[:300]}",
                                   attempt + 1)
        try:
            return resp.json(), attempt + 1
        except ValueError:
            last_kind, last_detail = "http_5xx", f"{url} answered a body that is not JSON: {resp.text[:200]}"
            continue
    log.warning("giving up after %d attempts: %s", policy.max_retries + 1, last_detail)
    raise TransportFailure(last_kind, last_detail, policy.max_retries + 1)
