"""`unipic data curate | versions | pull`: the curation stage and the DVC data registry.

Attached to the `unipic data` group by one line at the end of unipic/cli/data.py (`register(app)`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from unipic.cli.common import PresetOpt, SetOpt, make_config


def curate_cmd(
    source: Annotated[list[str], typer.Option("--source", "-i", help=(
        "Repeatable: 'shapes' (the preset's ShapesWorld spec), 'folder:DIR[,captions.jsonl]', "
        "'edits:triplets.jsonl', 'shards:DIR' or an s3:// prefix of WebDataset shards."))],
    work_dir: Annotated[Path, typer.Option(
        "--work-dir", "-w", help="Local folder for the dataset and reports.")] = Path(".unipic/runs/curate"),
    publish_uri: Annotated[str | None, typer.Option("--uri", help=(
        "s3:// prefix to publish to (default: s3://<data bucket>/curated/<config+sources hash>)."))] = None,
    publish: Annotated[bool, typer.Option(
        "--publish/--no-publish", help="Publish to the object store.")] = True,
    features: Annotated[bool, typer.Option(
        "--features/--no-features", help="Write signals to Feast.")] = True,
    version: Annotated[bool, typer.Option(
        "--version/--no-version", help="dvc add/push/tag a version.")] = True,
    preset: PresetOpt = "ci",
    set_: SetOpt = None,
) -> None:
    """Curate sources into a gated, published, featurised and versioned dataset."""
    from unipic.data.curation.stage import CurationInputs, check_sources, run_curation

    check_sources(source)
    cfg = make_config(preset, set_)
    out = run_curation(source, CurationInputs.from_config(cfg), work_dir, publish=publish,
                       publish_uri=publish_uri, features=features, version=version)
    typer.echo(json.dumps({"dataset_dir": str(out.dataset_dir), "card": str(out.dataset_dir / "README.md"),
                           "validation": str(out.validation_dir / "validation_summary.html"),
                           "rejected": out.report.rejected, **out.metadata()}, indent=2))


def versions_cmd(preset: PresetOpt = "ci", set_: SetOpt = None) -> None:
    """List the dataset versions in the DVC data registry (tag, git rev, DVC md5, files, message)."""
    from unipic.data.versioning import DataRegistry

    cfg = make_config(preset, set_)
    versions = DataRegistry(cfg.registry, cfg.store).versions()
    if not versions:
        typer.echo(f"no versions yet in {cfg.registry.path}; create one with `unipic data curate`", err=True)
    typer.echo(json.dumps([v.model_dump() for v in versions], indent=2))


def pull_cmd(
    rev: Annotated[str, typer.Option("--rev", "-r", help="Version tag (curated-vN) or git rev.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New folder to restore into.")],
    preset: PresetOpt = "ci",
    set_: SetOpt = None,
) -> None:
    """Restore a dataset version byte-exactly from the DVC remote (verified against its manifest)."""
    from unipic.data.versioning import DataRegistry

    cfg = make_config(preset, set_)
    registry = DataRegistry(cfg.registry, cfg.store)
    path = registry.pull(rev, out)
    v = registry.resolve(rev)
    typer.echo(json.dumps({"out": str(path), **v.as_metadata(), "verified": True}, indent=2))


def register(app: typer.Typer) -> None:
    app.command("curate")(curate_cmd)
    app.command("versions")(versions_cmd)
    app.command("pull")(pull_cmd)
