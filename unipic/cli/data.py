"""`unipic data ...`: datasets. Each command is a thin adapter over `unipic.data`; add new ones as functions
decorated with `@app.command("NAME")` below (heavy imports inside the command)."""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated

import typer

from unipic.cli.common import PresetOpt, SetOpt, make_config

app = typer.Typer(help="Generate, inspect and verify datasets.", no_args_is_help=True)


class GenerateTask(str, Enum):
    t2i = "t2i"
    edit = "edit"
    both = "both"


@app.command("generate")
def generate_cmd(
    out: Annotated[str, typer.Option("--out", "-o", help="Output directory, or s3://bucket/prefix to publish.")],
    task: Annotated[GenerateTask, typer.Option("--task", "-t", help="Which samples to generate.")] = GenerateTask.both,
    n: Annotated[int | None, typer.Option("--n", min=1, help="Samples per kind (sets shapes.n_t2i/n_edit).")] = None,
    heldout: Annotated[bool, typer.Option("--heldout", help="Only held-out compositions (evaluation split).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing dataset (local or s3://).")] = False,
    preset: PresetOpt = "ci",
    set_: SetOpt = None,
) -> None:
    """Generate a ShapesWorld dataset (WebDataset shards + index.parquet + manifest.json written last)."""
    from unipic.data.generate import generate_dataset

    sets = list(set_ or [])
    if n is not None:
        sets += [f"shapes.n_t2i={n}", f"shapes.n_edit={n}"]
    if heldout:
        sets.append("shapes.heldout=true")
    cfg = make_config(preset, sets)
    manifest = generate_dataset(cfg.shapes, out, store_cfg=cfg.store, kind=task.value, overwrite=overwrite)
    meta = manifest.metadata
    typer.echo(json.dumps({"out": out, "n_samples": meta["n_samples"], "split": meta["split"],
                           "counts": meta["counts"], "total_sha256": manifest.total_sha256,
                           "config_hash": meta["lineage"]["config_hash"]}, indent=2))


@app.command("verify")
def verify_cmd(
    path: Annotated[str, typer.Argument(help="A local dataset directory or an s3:// prefix.")],
    preset: PresetOpt = "ci",
    set_: SetOpt = None,
) -> None:
    """Check every file against the manifest, then stream every shard and match counts and hashes to the index."""
    from collections import Counter

    from unipic.data.shards import iter_dataset
    from unipic.storage import materialize, verify_dir

    cfg = make_config(preset, set_)
    local = materialize(path, cfg.store)
    manifest = verify_dir(local)
    kinds = Counter(rec.kind for rec in iter_dataset(local, verify_hashes=True))
    typer.echo(json.dumps({"path": path, "files": manifest.n_files, "total_sha256": manifest.total_sha256,
                           "samples": dict(kinds), "ok": True}, indent=2))


@app.command("preview")
def preview_cmd(
    path: Annotated[str, typer.Argument(help="A local dataset directory or an s3:// prefix.")],
    out: Annotated[str, typer.Option("--out", "-o", help="PNG file to write.")] = "preview.png",
    n: Annotated[int, typer.Option("--n", min=1, max=256, help="Samples per kind to show.")] = 16,
    scale: Annotated[int, typer.Option("--scale", min=1, max=16, help="Pixel upscaling factor.")] = 2,
    preset: PresetOpt = "ci",
    set_: SetOpt = None,
) -> None:
    """Write a captioned grid of the first samples of a dataset (edits as source | target pairs)."""
    from unipic.data.shapes.grid import dataset_preview
    from unipic.storage import materialize

    cfg = make_config(preset, set_)
    dataset_preview(materialize(path, cfg.store), out, n=n, scale=scale)
    typer.echo(out)


from unipic.cli.data_curation import register as _register_curation  # noqa: E402  (curate, versions, pull)

_register_curation(app)
