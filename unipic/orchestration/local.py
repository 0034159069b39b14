"""Run a KFP v2 pipeline in-process under `kfp.local` (SubprocessRunner, no venv per task).

Every component is declared with `install_kfp_package=False`, so a task costs ~0.1 s of overhead instead
of a pip install (notes/feas_ops.md §2). The same pipeline function compiles to the IR YAML that a
cluster runs; settings that only make sense in a cluster (GPU limits, secrets, node selectors) are
ignored by the local runner with a warning.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unipic.errors import UniPicError
from unipic.logging import get_logger

log = get_logger(__name__)


@dataclass
class LocalRun:
    pipeline_root: Path
    outputs: Any
    wall_s: float
    arguments: dict[str, Any] = field(default_factory=dict)


def run_local(
    pipeline_func: Callable[..., Any],
    arguments: dict[str, Any],
    pipeline_root: str | Path,
    *,
    enable_caching: bool = True,
    cache_root: str | Path | None = None,
) -> LocalRun:
    """Execute `pipeline_func(**arguments)` under kfp.local; raise UniPicError naming the failed task."""
    from kfp import local

    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(root),
        raise_on_error=True,
        enable_caching=enable_caching,
        cache_root=str(cache_root) if cache_root else None,
    )
    log.info("running pipeline %s under kfp.local (root %s)", getattr(pipeline_func, "name", pipeline_func), root)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no effect in the current local runner.*")
        try:
            outputs = pipeline_func(**arguments)
        except RuntimeError as exc:
            raise UniPicError(f"pipeline failed: {exc} (task logs are above; outputs under {root})") from None
    return LocalRun(pipeline_root=root, outputs=_plain(outputs), wall_s=time.perf_counter() - start,
                    arguments=arguments)


def _plain(outputs: Any) -> Any:
    """kfp.local returns the finished pipeline as a task; keep only its output values."""
    if hasattr(outputs, "outputs"):
        return {k: getattr(v, "uri", v) for k, v in outputs.outputs.items()}
    return outputs
