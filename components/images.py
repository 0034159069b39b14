"""Container images for components, resolved at compile time from the environment.

Pin by digest in production (`UNIPIC_IMAGE_TRAIN=registry/unipic-train@sha256:...`); `containers/build.sh`
prints the variables for the images it builds. The defaults name the images `containers/` builds.

Inside a running component the same names resolve from the task's environment: a training component passes
`TRAIN` to the TrainJob it submits for a multi-node stage, so tasks should carry `task_env()` (the compile-time
values) for the job's pods to run the image the task itself runs.
"""

from __future__ import annotations

import os

_REGISTRY = os.environ.get("UNIPIC_IMAGE_REGISTRY", "ghcr.io/unipic")
_TAG = os.environ.get("UNIPIC_IMAGE_TAG", "0.1.0")
_KINDS = ("curate", "train", "serve")


def _image(kind: str) -> str:
    return os.environ.get(f"UNIPIC_IMAGE_{kind.upper()}", f"{_REGISTRY}/unipic-{kind}:{_TAG}")


CURATE = _image("curate")
TRAIN = _image("train")
SERVE = _image("serve")


def task_env() -> dict[str, str]:
    """`UNIPIC_IMAGE_*` as resolved here, to set on pipeline tasks (`task.set_env_variable`) so that code in a
    task (e.g. a TrainJob submission) resolves the images this pipeline was compiled with."""
    return {f"UNIPIC_IMAGE_{kind.upper()}": _image(kind) for kind in _KINDS}
