"""Container images for components, resolved at compile time from the environment.

Pin by digest in production (`UNIPIC_IMAGE_TRAIN=registry/unipic-train@sha256:...`); `containers/build.sh`
prints the variables for the images it builds. The defaults name the images `containers/` builds.
"""

from __future__ import annotations

import os

_REGISTRY = os.environ.get("UNIPIC_IMAGE_REGISTRY", "ghcr.io/unipic")
_TAG = os.environ.get("UNIPIC_IMAGE_TAG", "0.1.0")


def _image(kind: str) -> str:
    return os.environ.get(f"UNIPIC_IMAGE_{kind.upper()}", f"{_REGISTRY}/unipic-{kind}:{_TAG}")


CURATE = _image("curate")
TRAIN = _image("train")
SERVE = _image("serve")
