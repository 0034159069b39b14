"""`unipic generate` and `unipic edit`: sample images from a model folder or s3:// URI into PNGs.

Both go through `_run`, so later sources (a serving --endpoint, a MetaQuery --model) plug in at one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from unipic.cli.common import PresetOpt, SetOpt, make_config

ModelOpt = Annotated[
    str | None, typer.Option("--model", "-m", help="Model folder or s3:// URI (a diffusers folder).")
]
EndpointOpt = Annotated[
    str | None,
    typer.Option("--endpoint", help="A running model server (http://HOST:PORT) instead of --model."),
]
OutOpt = Annotated[
    Path, typer.Option("--out", "-o", help="Directory for the PNGs, grid.png and images.json.")
]
NOpt = Annotated[int, typer.Option("--n", min=1, help="Images per prompt.")]
StepsOpt = Annotated[int, typer.Option("--steps", min=1, help="Euler steps.")]
GuidanceOpt = Annotated[
    float, typer.Option("--guidance", help="Text classifier-free guidance scale (1 = off).")
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed; image i uses seed + i.")]
SizeOpt = Annotated[
    int | None, typer.Option("--size", help="Square image side in px (default: the model's).")
]


def _run(
    model: str,
    prompts: list[str],
    out: Path,
    n: int,
    steps: int,
    guidance: float,
    seed: int,
    size: int | None,
    preset: str,
    sets: list[str] | None,
    image: Path | None = None,
    image_guidance: float = 1.0,
    endpoint: str | None = None,
) -> None:
    import torch
    from PIL import Image

    from unipic.errors import DataError
    from unipic.pipelines.loading import load_pipeline

    cfg = make_config(preset, sets)
    source = None
    if image is not None:
        if not image.is_file():
            raise DataError(f"source image {image} does not exist")
        try:
            source = Image.open(image).convert("RGB")
        except OSError as exc:
            raise DataError(f"cannot read {image} as an image: {exc}") from None
    if (model is None) == (endpoint is None):
        raise DataError("give exactly one of --model DIR_OR_S3_URI and --endpoint URL")
    if endpoint is not None:
        from unipic.serving.client import remote_images

        if image_guidance != 1.0:
            raise DataError("--image-guidance is not served over --endpoint; leave it at 1")
        images = remote_images(
            endpoint,
            prompts,
            n=n,
            steps=steps,
            guidance=guidance,
            seed=seed,
            size=size,
            image=source,
            cfg=cfg.serve.client,
        )
        record = {
            "endpoint": endpoint,
            "prompts": prompts,
            "n": n,
            "steps": steps,
            "guidance": guidance,
            "seed": seed,
            "size": size,
            "image": str(image) if image else None,
        }
        _save(images, prompts, n, out, source, record)
        return
    pipe = load_pipeline(model, cfg.store)
    total = len(prompts) * n
    generators = [torch.Generator().manual_seed(seed + i) for i in range(total)]
    result = pipe(
        prompts,
        image=source,
        height=size,
        width=size,
        num_inference_steps=steps,
        guidance_scale=guidance,
        image_guidance_scale=image_guidance,
        num_images_per_prompt=n,
        generator=generators,
        output_type="pil",
        show_progress=True,
    )
    images = list(result.images)
    record = dict(
        model=model,
        prompts=prompts,
        n=n,
        steps=steps,
        guidance=guidance,
        seed=seed,
        size=size,
        image=str(image) if image else None,
        image_guidance=image_guidance,
    )
    _save(images, prompts, n, out, source, record)


def _save(images: list, prompts: list[str], n: int, out: Path, source, record: dict) -> None:
    from unipic.pipelines.loading import save_images

    labels = [p for p in prompts for _ in range(n)]
    paths = save_images(images, out, labels=labels, record=record, grid_first=source)
    for p in paths:
        typer.echo(str(p))
    if (out / "grid.png").is_file():
        typer.echo(str(out / "grid.png"))


def generate(
    prompt: Annotated[list[str], typer.Option("--prompt", help="Text prompt (repeatable).")],
    out: OutOpt,
    model: ModelOpt = None,
    endpoint: EndpointOpt = None,
    n: NOpt = 1,
    steps: StepsOpt = 20,
    guidance: GuidanceOpt = 4.0,
    seed: SeedOpt = 0,
    size: SizeOpt = None,
    preset: PresetOpt = "ci",
    set_: SetOpt = None,
) -> None:
    """Text-to-image: write one PNG per image (+ grid.png when several) to --out."""
    _run(model, list(prompt), out, n, steps, guidance, seed, size, preset, set_, endpoint=endpoint)


def edit(
    image: Annotated[Path, typer.Option("--image", help="Source image (PNG/JPEG).")],
    instruction: Annotated[list[str], typer.Option("--instruction", help="Edit instruction (repeatable).")],
    out: OutOpt,
    model: ModelOpt = None,
    endpoint: EndpointOpt = None,
    n: NOpt = 1,
    steps: StepsOpt = 20,
    guidance: GuidanceOpt = 4.0,
    image_guidance: Annotated[
        float, typer.Option("--image-guidance", help="Image guidance (1 = off).")
    ] = 1.0,
    seed: SeedOpt = 0,
    size: SizeOpt = None,
    preset: PresetOpt = "ci",
    set_: SetOpt = None,
) -> None:
    """Instruction editing: the source is the reference image; output PNGs (source first in grid.png)."""
    _run(
        model,
        list(instruction),
        out,
        n,
        steps,
        guidance,
        seed,
        size,
        preset,
        set_,
        image=image,
        image_guidance=image_guidance,
        endpoint=endpoint,
    )
