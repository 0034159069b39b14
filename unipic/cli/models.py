"""`unipic models bootstrap|convert|info|memory`: create, convert and inspect generator model folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from unipic.cli.common import PresetOpt, SetOpt, make_config

app = typer.Typer(
    help="Create, convert and inspect UniPic2-SD3.5M-Kontext model folders.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace a non-empty output folder.")]


@app.command("bootstrap")
def bootstrap_cmd(
    out: Annotated[
        str, typer.Option("--out", "-o", help="Output folder or s3:// URI (published with a manifest).")
    ],
    preset: PresetOpt = "ci",
    set_: SetOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Write a random-init model of the preset's `model` section (the local stand-in for SD3.5-M weights)."""
    from unipic.config import config_hash
    from unipic.models.bootstrap import bootstrap_and_publish

    cfg = make_config(preset, set_)
    where = bootstrap_and_publish(
        cfg.model,
        out,
        cfg.store,
        overwrite=overwrite,
        metadata={"preset": cfg.preset, "model_config_hash": config_hash(cfg.model)},
    )
    typer.echo(where)


@app.command("convert")
def convert_cmd(
    src: Annotated[Path, typer.Option("--src", help="SD3/SD3.5 transformer folder, or a pipeline folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the SD3KontextTransformer.")],
    overwrite: OverwriteOpt = False,
) -> None:
    """Convert a plain SD3/SD3.5 transformer into SD3KontextTransformer (only ref_type_embed is new, zero)."""
    from unipic.models.convert import convert_transformer

    typer.echo(str(convert_transformer(src, out, overwrite=overwrite)))


@app.command("info")
def info_cmd(
    model: Annotated[str, typer.Argument(help="Model folder or s3:// URI.")],
    preset: PresetOpt = "ci",
    set_: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the components, parameter counts, transformer architecture and scheduler of a model folder."""
    from unipic.models.info import describe_model
    from unipic.pipelines.loading import resolve_model_dir

    cfg = make_config(preset, set_)
    info = describe_model(resolve_model_dir(model, cfg.store))
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    typer.echo(f"{info['path']}  ({info['pipeline']})")
    for name, c in info["components"].items():
        params = f"{c['params'] / 1e6:10.2f} M" if "params" in c else " " * 12
        typer.echo(f"  {name:<15}{params}  {c['class']}")
    for section in ("transformer", "vae", "scheduler", "card"):
        if section in info:
            typer.echo(f"{section}: " + ", ".join(f"{k}={v}" for k, v in info[section].items()))


@app.command("memory")
def memory_cmd(
    preset: PresetOpt = "ci",
    set_: SetOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    text_tokens: Annotated[
        int, typer.Option("--text-tokens", help="Default (-1): the preset's CLIP + T5 lengths.")
    ] = -1,
    edit: Annotated[bool, typer.Option("--edit", help="Count reference tokens (editing batches).")] = False,
    dtype: Annotated[str, typer.Option("--dtype")] = "float32",
    checkpointing: Annotated[bool, typer.Option("--gradient-checkpointing")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Estimate training memory for the preset's transformer (parameters counted on the meta device)."""
    from unipic.models.memory import available_memory_bytes, estimate_training_memory

    cfg = make_config(preset, set_)
    m = cfg.model
    tokens = text_tokens if text_tokens >= 0 else m.text.clip_max_length + m.text.t5_max_length
    est = estimate_training_memory(
        m.transformer,
        batch_size=batch_size,
        latent_size=m.latent_size,
        text_tokens=tokens,
        with_reference=edit,
        dtype=dtype,
        gradient_checkpointing=checkpointing,
    )
    avail = available_memory_bytes()
    if as_json:
        typer.echo(json.dumps({**est.as_dict(), "available_bytes": avail}, indent=2))
        return
    typer.echo(est.describe())
    typer.echo(
        f"available here: {avail / 2**30:.1f} GiB -> "
        f"{'fits' if est.total_bytes < 0.9 * avail else 'DOES NOT FIT'}"
    )
