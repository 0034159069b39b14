"""Turn minio/urllib3 failures into `StorageError`s that say what is wrong and what to do.

Never include the secret key in a message; the access key is fine (it names *which* credentials are wrong).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import urllib3
from minio.error import InvalidResponseError, S3Error, ServerError

from unipic.config.store import StoreConfig
from unipic.errors import StorageError



class ObjectNotFoundError(StorageError):
    """The object (or the bucket holding it) does not exist."""


class BucketNotFoundError(ObjectNotFoundError):
    """The bucket does not exist."""


_AUTH_CODES = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "InvalidToken", "ExpiredToken"}


def unreachable_message(cfg: StoreConfig, detail: str = "") -> str:
    tail = f" ({detail})" if detail else ""
    return (f"object store at {cfg.endpoint} is not reachable; start it with `unipic services up` "
            f"or fix store.endpoint{tail}")


def _root_cause(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    while reason is not None and getattr(reason, "reason", None) is not None and reason is not reason.reason:
        reason = reason.reason
    text = str(reason or exc)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    return text.split(": ", 1)[-1][:160]


@contextlib.contextmanager
def translate_errors(cfg: StoreConfig, what: str) -> Iterator[None]:
    """`what` names the operation and its target, e.g. "read s3://unipic-data/x"."""
    try:
        yield
    except S3Error as exc:
        code = exc.code or ""
        if code in _AUTH_CODES:
            raise StorageError(
                f"object store at {cfg.endpoint} refused the credentials for access key "
                f"'{cfg.access_key.get_secret_value()}' ({code}) while trying to {what}; set the right "
                "UNIPIC_S3_ACCESS_KEY/UNIPIC_S3_SECRET_KEY (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
            ) from None
        if code == "NoSuchBucket":
            bucket = exc.bucket_name or "?"
            raise BucketNotFoundError(
                f"bucket '{bucket}' does not exist at {cfg.endpoint} (while trying to {what}); "
                "`unipic services up` creates the configured store.buckets, or call ObjectStore.ensure_bucket"
            ) from None
        if code in ("NoSuchKey", "ResourceNotFound"):
            raise ObjectNotFoundError(f"no such object: cannot {what}; check the URI (list the prefix to see what "
                               "is there)") from None
        raise StorageError(f"object store at {cfg.endpoint} answered {code}: {exc.message} "
                           f"(while trying to {what})") from None
    except (ServerError, InvalidResponseError) as exc:
        raise StorageError(f"object store at {cfg.endpoint} failed to {what}: {exc}; check the server "
                           "log (`unipic services status`)") from None
    except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
        raise StorageError(unreachable_message(cfg, _root_cause(exc))) from None
