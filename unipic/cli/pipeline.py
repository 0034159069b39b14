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
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="Pipeline parameter NAME=VALUE, e.g. --param rl_edit=false (repeatable).")] = None,
) -> None:
    """Run the whole UniPic 2.0 pipeline locally under kfp.local on the embedded services."""
    import yaml

    from pipelines.unipic2 import local_unipic2
    from unipic.errors import UniPicError
    from unipic.orchestration.local import run_local
    from unipic.orchestration.run_report import summarize_run

    known = set(local_unipic2.component_spec.inputs or {}) - {"preset", "overrides"}
    params: dict = {}
    for item in param or []:
        name, sep, value = item.partition("=")
        if not sep or name not in known:
            raise UniPicError(f"--param '{item}': expected NAME=VALUE with NAME one of {', '.join(sorted(known))}")
        params[name] = yaml.safe_load(value) if value else ""

    cfg = make_config(preset, set_)
    if services:
        from unipic.services import seaweedfs

        st = seaweedfs.up(cfg.store, cfg.services)
        typer.echo(f"object store: {st.endpoint} (pid {st.pid})", err=True)
    root = Path(cfg.run.workdir).resolve() / f"{cfg.run.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    result = run_local(local_unipic2, {"preset": preset, "overrides": list(set_ or []), **params},
                       root / "pipeline_root", enable_caching=cache,
                       cache_root=Path(cfg.run.workdir).resolve() / ".kfp_cache")
    jobs = sorted(p for p in result.pipeline_root.iterdir() if p.is_dir())
    summary = {"run_root": str(root), "wall_s": round(result.wall_s, 1), **summarize_run(jobs[-1])}
    typer.echo(json.dumps(summary, default=str, indent=2))
    typer.secho(f"run report: {summary['run_report']}", fg=typer.colors.GREEN, err=True)
    if summary["endpoint"]:
        typer.secho(f"serving at {summary['endpoint']} (stop: unipic serve stop)", fg=typer.colors.GREEN, err=True)
    elif summary["gate"]:
        typer.echo(f"gate decision: {summary['gate']} (not deployed; reasons in the run report)", err=True)


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


def submit(
    preset: PresetOpt = "base",
    set_: SetOpt = None,
    host: Annotated[str, typer.Option(help="KFP API endpoint; default cluster.host from the preset.")] = "",
    run_name: Annotated[str, typer.Option(help="Run name; default <run.name>-<timestamp>.")] = "",
    pipeline_file: Annotated[Path, typer.Option(help="Compiled IR YAML.")] = COMPILED,
    wait: Annotated[bool, typer.Option(help="Follow the run until it ends.")] = False,
) -> None:
    """Create a run of the compiled pipeline on a KFP cluster (kfp.Client)."""
    from unipic.orchestration import remote

    cfg = make_config(preset, set_)
    cluster = cfg.cluster.model_copy(update={"host": host}) if host else cfg.cluster
    name = run_name or f"{cfg.run.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    info = remote.submit(cluster, pipeline_file, preset=preset, overrides=list(set_ or []), run_name=name)
    typer.echo(f"submitted {info.name}: run id {info.run_id}")
    if wait:
        remote.follow(cluster, info.run_id, on_change=lambda i: typer.echo(f"{i.name}: {i.state}"))


def runs(
    preset: PresetOpt = "base",
    set_: SetOpt = None,
    host: Annotated[str, typer.Option(help="KFP API endpoint; default cluster.host from the preset.")] = "",
    follow_id: Annotated[str, typer.Option("--follow", help="Follow this run id until it ends.")] = "",
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
) -> None:
    """List recent runs on the cluster, or follow one."""
    from unipic.orchestration import remote

    cfg = make_config(preset, set_)
    cluster = cfg.cluster.model_copy(update={"host": host}) if host else cfg.cluster
    if follow_id:
        remote.follow(cluster, follow_id, on_change=lambda i: typer.echo(f"{i.name}: {i.state}"))
        return
    for r in remote.list_runs(cluster, limit=limit):
        typer.echo(f"{r.run_id}  {r.state:<10} {r.created_at}  {r.name}")
