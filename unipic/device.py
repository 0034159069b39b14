"""Where models run: one rule for every stage, so a cluster pod with a GPU uses it without per-stage flags.

`auto` takes the process's local GPU (LOCAL_RANK under torchrun/DeepSpeed) when CUDA is available and the
CPU otherwise; `cuda` insists on a GPU and fails up front instead of silently training on the CPU.
"""

from __future__ import annotations

import os

import torch

from unipic.errors import ConfigError


def resolve_device(choice: str = "auto", local_rank: int | None = None, *, key: str = "device") -> torch.device:
    if choice not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"{key}={choice!r} is not a device: use auto, cpu or cuda")
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"{key}=cuda but this process sees no CUDA device: set {key}=cpu or auto, or run "
                          "where a GPU is visible (CUDA_VISIBLE_DEVICES, the pod's GPU limit)")
    rank = int(os.environ.get("LOCAL_RANK", "0")) if local_rank is None else local_rank
    return torch.device("cuda", rank % torch.cuda.device_count())
