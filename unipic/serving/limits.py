"""Request validation: an `Instance` -> a `Job` the model can run, or a `RequestError` naming the field and limit.

Everything the model would choke on is caught here, before the request is queued, so a bad request costs
microseconds and never reaches (or kills) the worker: sizes the autoencoder cannot take, undecodable or
truncated images, decompression bombs, out-of-range steps.
"""

from __future__ import annotations

import base64
import binascii
import io
import secrets
import warnings
from dataclasses import dataclass, field
from typing import Any

import PIL.Image

from unipic.config.serve import DefaultsConfig, LimitsConfig
from unipic.serving.schemas import Instance, RequestError

MAX_SOURCE_FACTOR = 4
"""A source image may be up to this many times `max_side` per side before it is resized (and refused beyond)."""


@dataclass(frozen=True)
class ModelGeometry:
    """What the loaded model can take: sides must be multiples of `multiple`, at most `max_side`."""

    multiple: int
    max_side: int
    default_side: int
    can_understand: bool = False


@dataclass
class Job:
    """A validated request, ready to batch: every default filled in and every value inside its limit."""

    task: str
    prompt: str
    image: PIL.Image.Image | None
    steps: int
    guidance: float
    width: int
    height: int
    seed: int
    num_images: int
    max_new_tokens: int
    timings: dict[str, float] = field(default_factory=dict)

    def batch_key(self) -> tuple[Any, ...]:
        """Jobs with equal keys can share one pipeline call (each image keeps its own generator)."""
        if self.task == "understand":
            return ("understand", self.max_new_tokens)
        return (self.task, self.height, self.width, self.steps, round(self.guidance, 6))

    @property
    def cost(self) -> int:
        return 1 if self.task == "understand" else self.num_images


def decode_image(b64: str, limits: LimitsConfig, field_name: str = "image") -> PIL.Image.Image:
    """Base64 PNG/JPEG -> RGB image. Malformed base64 or a non-image/truncated file -> 400; too large -> 422."""
    if len(b64) > limits.max_image_bytes * 4 // 3 + 8:
        raise RequestError(
            422,
            f"{field_name}: about {len(b64) * 3 // 4} bytes is over the limit "
            f"max_image_bytes={limits.max_image_bytes}",
            field=field_name,
        )
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(
            400, f"{field_name}: not valid base64 (standard alphabet, with padding)", field=field_name
        ) from None
    if len(raw) > limits.max_image_bytes:
        raise RequestError(
            422,
            f"{field_name}: {len(raw)} bytes is over the limit max_image_bytes={limits.max_image_bytes}",
            field=field_name,
        )
    top = limits.max_side * MAX_SOURCE_FACTOR
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
            img = PIL.Image.open(io.BytesIO(raw))
            if img.format not in ("PNG", "JPEG", "WEBP"):
                raise RequestError(
                    400, f"{field_name}: a {img.format} file; send PNG, JPEG or WebP", field=field_name
                )
            w, h = img.size
            if w > top or h > top:
                raise RequestError(
                    422,
                    f"{field_name}: {w}x{h} px is over the limit {top} px per side "
                    f"({MAX_SOURCE_FACTOR} x max_side={limits.max_side})",
                    field=field_name,
                )
            img.load()
            return img.convert("RGB")
    except RequestError:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files; all are the client's
        raise RequestError(
            400,
            f"{field_name}: not a decodable image, or truncated ({type(exc).__name__}: {exc})",
            field=field_name,
        ) from None


def _check_side(name: str, value: int, limits: LimitsConfig, geo: ModelGeometry) -> None:
    top = min(limits.max_side, geo.max_side)
    if value <= 0 or value % geo.multiple:
        raise RequestError(
            422, f"{name}={value} must be a positive multiple of {geo.multiple} for this model", field=name
        )
    if value > top:
        which = (
            f"max_side={limits.max_side}"
            if limits.max_side <= geo.max_side
            else f"the model's {geo.max_side}"
        )
        raise RequestError(422, f"{name}={value} is over the limit {which}", field=name)


def _snap(side: int, geo: ModelGeometry, limits: LimitsConfig) -> int:
    top = min(limits.max_side, geo.max_side)
    side = min(side, top) // geo.multiple * geo.multiple
    return max(side, geo.multiple)


def resolve(inst: Instance, limits: LimitsConfig, defaults: DefaultsConfig, geo: ModelGeometry) -> Job:
    """Fill defaults and enforce every limit; raises `RequestError` naming the field and the limit."""
    task = inst.task or ("edit" if inst.image else "t2i")
    if task == "understand" and not geo.can_understand:
        raise RequestError(
            422, "task=understand needs a MetaQuery model; this server holds a Kontext model", field="task"
        )
    prompt = inst.prompt
    if prompt is None or not prompt.strip():
        raise RequestError(
            422, "prompt (or instruction/question) is required and must not be blank", field="prompt"
        )
    if len(prompt) > limits.max_prompt_chars:
        raise RequestError(
            422,
            f"prompt: {len(prompt)} characters is over the limit max_prompt_chars={limits.max_prompt_chars}",
            field="prompt",
        )
    if "\x00" in prompt:
        raise RequestError(422, "prompt: contains a NUL character", field="prompt")
    if task == "edit" and not inst.image:
        raise RequestError(422, "task=edit needs a source image (base64 in 'image')", field="image")
    if task == "t2i" and inst.image:
        raise RequestError(422, "task=t2i takes no image; leave 'task' out or use task=edit", field="image")

    steps = defaults.num_inference_steps if inst.steps is None else inst.steps
    if not 1 <= steps <= limits.max_steps:
        raise RequestError(422, f"steps={steps} is outside 1..{limits.max_steps} (max_steps)", field="steps")
    guidance = inst.guidance
    if guidance is None:
        edit_default = defaults.edit_guidance_scale if task == "edit" else None
        guidance = defaults.guidance_scale if edit_default is None else edit_default
    if not 0 <= guidance <= limits.max_guidance:  # also refuses NaN
        raise RequestError(
            422, f"guidance={guidance} is outside 0..{limits.max_guidance} (max_guidance)", field="guidance"
        )
    if not 1 <= inst.num_images <= limits.max_images:
        raise RequestError(
            422,
            f"num_images={inst.num_images} is outside 1..{limits.max_images} (max_images)",
            field="num_images",
        )
    new_tokens = defaults.max_new_tokens if inst.max_new_tokens is None else inst.max_new_tokens
    if not 1 <= new_tokens <= limits.max_new_tokens:
        raise RequestError(
            422,
            f"max_new_tokens={new_tokens} is outside 1..{limits.max_new_tokens} (max_new_tokens)",
            field="max_new_tokens",
        )

    image = decode_image(inst.image, limits) if inst.image else None
    if task == "edit" and image is not None and inst.width is None and inst.height is None:
        width, height = _snap(image.size[0], geo, limits), _snap(image.size[1], geo, limits)
    else:
        width = geo.default_side if inst.width is None else inst.width
        height = geo.default_side if inst.height is None else inst.height
        width, height = min(width, 2**31), min(height, 2**31)
    if task != "understand":
        _check_side("width", width, limits, geo)
        _check_side("height", height, limits, geo)
    if image is not None and task == "edit" and image.size != (width, height):
        image = image.resize((width, height), PIL.Image.Resampling.BICUBIC)
    seed = secrets.randbits(31) if inst.seed is None else inst.seed
    if seed + inst.num_images > 2**63 - 1:
        raise RequestError(422, f"seed={seed}: seed + num_images must stay below 2**63", field="seed")
    return Job(
        task=task,
        prompt=prompt,
        image=image,
        steps=steps,
        guidance=float(guidance),
        width=width,
        height=height,
        seed=seed,
        num_images=inst.num_images,
        max_new_tokens=new_tokens,
    )
