"""Image <-> wire encodings shared by the judge clients and the local judge server (PNG, base64)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image

from unipic.errors import DataError

ImageLike = Any  # PIL.Image.Image | np.ndarray (H, W, 3) uint8


def to_pil(image: ImageLike) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        if arr.max() <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise DataError(f"expected an RGB image (H, W, 3), got an array of shape {arr.shape}")
    return Image.fromarray(arr, "RGB")


def to_array(image: ImageLike) -> np.ndarray:
    return np.asarray(to_pil(image), dtype=np.uint8)


def png_bytes(image: ImageLike) -> bytes:
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG")
    return buf.getvalue()


def b64_png(image: ImageLike) -> str:
    return base64.b64encode(png_bytes(image)).decode("ascii")


def data_url(image: ImageLike) -> str:
    """The form OpenAI-compatible servers (vLLM, KServe, api.openai.com) accept in `image_url.url`."""
    return "data:image/png;base64," + b64_png(image)


def decode_b64_image(text: str) -> Image.Image:
    """Decode a base64 payload or a `data:image/...;base64,` URL into an RGB PIL image."""
    if text.startswith("data:"):
        _, _, text = text.partition(",")
    try:
        raw = base64.b64decode(text, validate=False)
        img = Image.open(io.BytesIO(raw))
        img.load()
    except Exception as exc:  # noqa: BLE001 - any decoding failure is bad input
        raise DataError(f"image payload is not a decodable base64 image: {exc}") from None
    return img.convert("RGB")
