"""`EchoPipeline`: a test double with the pipeline interface the predictor uses, for tests of the serving layer.

It draws each image from its own generator (as the real pipeline does), so tests can check that batching never
changes an image, that seeds map to images, and that edits see their source, in milliseconds and without a model.
It is never loaded by `unipic serve`; the real pipelines are (`unipic.pipelines.metaquery.load_pipeline`).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import PIL.Image
import torch


class _Output:
    def __init__(self, images: list[PIL.Image.Image]):
        self.images = images


class EchoPipeline:
    size_multiple = 4
    max_image_side = 128
    default_image_size = 32

    def __init__(self, understands: bool = False, fail_on: str | None = None):
        self.calls: list[dict[str, Any]] = []
        self.fail_on = fail_on
        self._lock = threading.Lock()
        if understands:
            self.understand = self._understand  # only MetaQuery pipelines have it

    def __call__(
        self,
        prompt: list[str],
        image: list[PIL.Image.Image] | None = None,
        height: int = 32,
        width: int = 32,
        num_inference_steps: int = 1,
        guidance_scale: float = 1.0,
        num_images_per_prompt: int = 1,
        generator: list[torch.Generator] | None = None,
        output_type: str = "pil",
        **_: Any,
    ) -> _Output:
        with self._lock:
            self.calls.append(
                {
                    "n": len(prompt),
                    "height": height,
                    "width": width,
                    "steps": num_inference_steps,
                    "guidance": guidance_scale,
                    "edit": image is not None,
                }
            )
        if self.fail_on is not None and self.fail_on in prompt:
            raise RuntimeError(f"EchoPipeline asked to fail on {self.fail_on!r}")
        gens = generator or [torch.Generator().manual_seed(0) for _ in prompt]
        out = []
        for i, (p, g) in enumerate(zip(prompt, gens)):
            noise = torch.rand((height, width, 3), generator=g).numpy()
            arr = (noise * 255).astype(np.uint8)
            if image is not None and image[i] is not None:
                src = np.asarray(image[i].convert("RGB").resize((width, height)))
                arr = ((arr.astype(np.uint16) + src) // 2).astype(np.uint8)
            arr[0, 0] = [len(p) % 256, num_inference_steps % 256, 0]
            out.append(PIL.Image.fromarray(arr))
        return _Output(out)

    def _understand(
        self, images: list[PIL.Image.Image | None], questions: list[str], max_new_tokens: int = 8
    ) -> list[str]:
        return [
            f"{'image' if im is not None else 'no image'}: {q}"[: max_new_tokens * 8]
            for im, q in zip(images, questions)
        ]


def tiny_model(out_dir: Any, preset: str = "ci") -> Any:
    """A random-init model folder of `preset` (the ~1 M DiT for ci), for tests that serve a real pipeline."""
    from pathlib import Path

    from unipic.config import load_config
    from unipic.models.bootstrap import bootstrap_base_model

    out = Path(out_dir)
    if (out / "model_index.json").is_file():
        return out
    return bootstrap_base_model(load_config(preset).model, out)
