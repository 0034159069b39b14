"""`unipic understand`: the MetaQuery model's frozen Qwen2.5-VL answers a question about an image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from unipic.cli.common import PresetOpt, SetOpt, make_config
from unipic.errors import ConfigError


def resolve_model(model: str, cfg) -> str:
    """`metaquery` names this run's MetaQuery output (metaquery.train.output, else the stage-2 work dir's
    model/); anything else is a model folder or s3:// URI."""
    if model != "metaquery":
        return model
    out = cfg.metaquery.train.output
    if out:
        return out
    return str(Path(cfg.run.workdir) / cfg.run.name / f"metaquery-stage{cfg.metaquery.train.stage}" / "model")


def load_model(model: str, cfg):
    from unipic.pipelines.metaquery import load_pipeline
    from unipic.storage import materialize

    local = materialize(resolve_model(model, cfg), cfg.store, Path(cfg.run.workdir) / "cache" / "models")
    return load_pipeline(local, store=cfg.store)


def understand(
    image: Annotated[
        Path, typer.Option("--image", "-i", help="Image file to ask about.", exists=True, dir_okay=False)
    ],
    question: Annotated[str, typer.Option("--question", "-q", help="The question.")] = "Describe this image.",
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="MetaQuery model folder / s3:// URI, or 'metaquery' for this run's trained model.",
        ),
    ] = "metaquery",
    max_new_tokens: Annotated[
        int | None, typer.Option(help="Answer length (default metaquery.max_new_tokens).")
    ] = None,
    preset: PresetOpt = "ci",
    set_: SetOpt = None,
) -> None:
    """Answer a question about an image with the MetaQuery model's MLLM (Qwen2.5-VL, frozen in training)."""
    from PIL import Image

    from unipic.pipelines.metaquery import UniPicMetaQueryPipeline

    cfg = make_config(preset, set_)
    pipe = load_model(model, cfg)
    if not isinstance(pipe, UniPicMetaQueryPipeline):
        raise ConfigError(
            f"{model} is a {type(pipe).__name__}: only a MetaQuery model has an MLLM to answer "
            "questions; give the output of `unipic train metaquery`"
        )
    with Image.open(image) as im:
        answer = pipe.understand(
            im.convert("RGB"), question, max_new_tokens=max_new_tokens or cfg.metaquery.max_new_tokens
        )[0]
    typer.echo(json.dumps({"question": question, "answer": answer}))
