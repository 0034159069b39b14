"""`unipic run | compile | submit | runs`: the pipeline, locally under kfp.local or on a KFP cluster."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from unipic.cli.common import PresetOpt, SetOpt, make_config

COMPILED = Path(__file__).resolve().parents[2] / "pipelines" / "compiled" / "unipic2.yaml"


def run(
    preset: PresetOpt = "ci",
    set_: SetOpt = None,
    services: Annotated[bool, typer.Option(help="Start the embedded object store first (idempotent).")] = True,
    cache: Annotated[bool, typer.Option(help="Reuse outputs of identical tasks from earlier runs.")] = True,
) -> None:
    """Run the whole UniPic 2.0 pipeline locally under kfp.local on the embedded services."""
    from pipelines.unipic2 import unipic2
    from unipic.orchestration.local import run_local

    cfg = make_config(preset, set_)
    if services:
        from unipic.services import seaweedfs

        st = seaweedfs.up(cfg.store, cfg.services)
        typer.echo(f"object store: {st.endpoint} (pid {st.pid})", err=True)
    root = Path(cfg.run.workdir).resolve() / f"{cfg.run.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    result = run_local(unipic2, {"preset": preset, "overrides": list(set_ or [])}, root / "pipeline_root",
                       enable_caching=cache, cache_root=Path(cfg.run.workdir).resolve() / ".kfp_cache")
    reports = sorted(result.pipeline_root.glob("*/run_report.html"))
    typer.echo(json.dumps({"run_root": str(root), "wall_s": round(result.wall_s, 1), "outputs": result.outputs,
                           "run_report": str(reports[-1]) if reports else None}, default=str, indent=2))


def compile_(
    preset: Annotated[str, typer.Option("--preset", "-p", help="Preset whose `cluster` section is compiled in.")] = "base",
    set_: SetOpt = None,
    out: Annotated[Path, typer.Option(help="Where to write the IR YAML.")] = COMPILED,
    check: Annotated[bool, typer.Option(help="Fail if the committed YAML differs from a fresh compile.")] = False,
) -> None:
    """Compile the pipeline to KFP IR YAML (validated offline); --check is the CI staleness gate."""
    import tempfile

    from pipelines.unipic2 import build_pipeline
    from unipic.errors import UniPicError
    from unipic.orchestration.compile import compile_pipeline

    unipic2 = build_pipeline(make_config(preset, set_).cluster)
    if check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = compile_pipeline(unipic2, Path(tmp) / "unipic2.yaml").read_text()
        if not out.is_file() or out.read_text() != fresh:
            raise UniPicError(f"{out} is stale: run `unipic compile` and commit the result")
        typer.echo(f"{out} is current")
        return
    typer.echo(str(compile_pipeline(unipic2, out)))
