"""Turn (prompt, optional image) pairs into Qwen2.5-VL inputs with N query slots at the end.

`Qwen2_5_VLProcessor` cannot be built without torchvision (its video processor imports it), so this
module does the three things we need by hand: chat-format the text, expand each image placeholder to
the number of merged vision tokens, and build `mm_token_type_ids`, without which transformers v5
does not compute the 3-D mRoPE positions. It works the same with a tokenizer built in code (tests, CPU
presets) and with the real Qwen2.5-VL-7B tokenizer loaded from its folder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from unipic.errors import ConfigError

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<|query|>",
)
PROCESSOR_CONFIG = "metaquery_processor.json"
PATCH = 14
MERGE = 2
FACTOR = PATCH * MERGE


def make_qwen_tokenizer(corpus: Sequence[str] | None = None, vocab_size: int = 600) -> Any:
    """A byte-level Qwen2 tokenizer built in code (no downloads): never emits <unk>.

    With a corpus, BPE merges are learned on it (union with the 256 byte symbols, so coverage stays
    total) and ShapesWorld captions shrink to a few tokens per word, which keeps CPU sequences short.
    """
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_symbols = list(bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(byte_symbols)}
    merges: list[tuple[str, str]] = []
    if corpus:
        trained = Qwen2Tokenizer(vocab=dict(vocab), merges=[]).train_new_from_iterator(
            list(corpus), vocab_size=vocab_size
        )
        model = json.loads(trained.backend_tokenizer.to_str())["model"]
        for key in sorted(model["vocab"], key=model["vocab"].get):
            vocab.setdefault(key, len(vocab))
        merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges)
    tok.add_tokens(list(SPECIAL_TOKENS), special_tokens=True)
    tok.pad_token = "<|endoftext|>"
    tok.eos_token = "<|im_end|>"
    return tok


def shapes_corpus() -> list[str]:
    """Words of ShapesWorld captions and instructions, enough to learn useful merges."""
    colours = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white", "gray", "cyan"]
    shapes = ["circle", "square", "triangle", "circles", "squares", "triangles", "star", "diamond"]
    words = [
        "a",
        "an",
        "the",
        "and",
        "of",
        "left",
        "right",
        "above",
        "below",
        "two",
        "three",
        "four",
        "generate",
        "image",
        "make",
        "change",
        "add",
        "remove",
        "replace",
        "move",
        "to",
        "with",
        "bigger",
        "smaller",
        "background",
        "into",
        "recolor",
        "resize",
        "what",
        "is",
        "in",
        "this",
        "describe",
        "colour",
        "color",
        "shape",
        "photo",
        "picture",
        "there",
    ]
    lines = [f"Generate an image: a {c} {s}" for c in colours for s in shapes]
    lines += [f"change the {c} {s} to {c2}" for c in colours for s in shapes for c2 in colours[:3]]
    lines.append(" ".join(words))
    return lines


def image_processor_class() -> type:
    """The Qwen2-VL image processor that works here: the PIL one when torchvision is absent (no warning)."""
    import importlib.util

    if importlib.util.find_spec("torchvision") is None:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        return Qwen2VLImageProcessorPil
    from transformers import Qwen2VLImageProcessor

    return Qwen2VLImageProcessor


@dataclass
class MetaQueryInputs:
    """A padded batch for the frozen MLLM. `query_mask` marks the N query slots (always the last N)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    mm_token_type_ids: torch.Tensor
    query_mask: torch.Tensor
    pixel_values: torch.Tensor | None = None
    image_grid_thw: torch.Tensor | None = None

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> MetaQueryInputs:
        pv = self.pixel_values
        if pv is not None:
            pv = pv.to(device=device, dtype=dtype or pv.dtype)
        return MetaQueryInputs(
            input_ids=self.input_ids.to(device),
            attention_mask=self.attention_mask.to(device),
            mm_token_type_ids=self.mm_token_type_ids.to(device),
            query_mask=self.query_mask.to(device),
            pixel_values=pv,
            image_grid_thw=None if self.image_grid_thw is None else self.image_grid_thw.to(device),
        )


class MetaQueryProcessor:
    """Chat template + image expansion + query slots, for any Qwen2-family tokenizer.

    `image_size`: side (px, multiple of 28) the MLLM sees; None follows UniPic2 (each side × 28/32, so the
    MLLM gets a quarter of the DiT's tokens). `system_prompt` "" drops Qwen's default system turn, as the
    UniPic2 scripts do.
    """

    def __init__(
        self,
        tokenizer: Any,
        image_processor: Any | None = None,
        *,
        num_queries: int = 0,
        image_size: int | None = None,
        system_prompt: str = "",
    ) -> None:
        if image_size is not None and image_size % FACTOR:
            raise ConfigError(
                f"metaquery.mllm.image_size={image_size} must be a multiple of {FACTOR} "
                f"(Qwen2.5-VL patch {PATCH} x merge {MERGE}); try {max(FACTOR, image_size // FACTOR * FACTOR)}"
            )
        self.tokenizer = tokenizer
        if image_processor is None:
            image_processor = image_processor_class()(
                patch_size=PATCH, merge_size=MERGE, temporal_patch_size=2
            )
        self.image_processor = image_processor
        self.num_queries = num_queries
        self.image_size = image_size
        self.system_prompt = system_prompt
        self.image_token = "<|image_pad|>"
        self.image_token_id = self._token_id(self.image_token)
        self.video_token_id = self._token_id("<|video_pad|>")
        self.vision_start_id = self._token_id("<|vision_start|>")
        self.vision_end_id = self._token_id("<|vision_end|>")
        query = tokenizer.convert_tokens_to_ids("<|query|>")
        self.query_token_id = query if isinstance(query, int) and query != tokenizer.unk_token_id else 0

    def _token_id(self, token: str) -> int:
        idx = self.tokenizer.convert_tokens_to_ids(token)
        if (
            not isinstance(idx, int)
            or idx is None
            or (self.tokenizer.unk_token_id is not None and idx == self.tokenizer.unk_token_id)
        ):
            raise ConfigError(
                f"the MLLM tokenizer has no '{token}' token: give metaquery.mllm.pretrained a "
                "Qwen2.5-VL folder, or leave it empty to build the tiny tokenizer in code"
            )
        return idx

    # ------------------------------------------------------------------ images
    def mllm_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) the MLLM sees: the configured square side, else UniPic2's ×28/32 rule."""
        if self.image_size is not None:
            return self.image_size, self.image_size
        w = max(FACTOR, round(width * 28 / 32 / FACTOR) * FACTOR)
        h = max(FACTOR, round(height * 28 / 32 / FACTOR) * FACTOR)
        return w, h

    def preprocess_images(self, images: Sequence[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
        resized = []
        for img in images:
            w, h = self.mllm_size(*img.size)
            resized.append(img.convert("RGB").resize((w, h), Image.BICUBIC))
        areas = [im.size[0] * im.size[1] for im in resized]
        out = self.image_processor(
            images=resized,
            size={"shortest_edge": min(areas), "longest_edge": max(areas)},
            return_tensors="pt",
        )
        return torch.as_tensor(np.asarray(out["pixel_values"])), torch.as_tensor(
            np.asarray(out["image_grid_thw"])
        )

    # ------------------------------------------------------------------ text
    def chat_text(self, text: str, has_image: bool, *, add_generation_prompt: bool = True) -> str:
        parts = []
        if self.system_prompt:
            parts.append(f"<|im_start|>system\n{self.system_prompt}<|im_end|>\n")
        vision = "<|vision_start|><|image_pad|><|vision_end|>" if has_image else ""
        parts.append(f"<|im_start|>user\n{vision}{text}<|im_end|>\n")
        if add_generation_prompt:
            parts.append("<|im_start|>assistant\n")
        return "".join(parts)

    def __call__(
        self,
        texts: Sequence[str],
        images: Sequence[Image.Image | None] | None = None,
        *,
        num_queries: int | None = None,
    ) -> MetaQueryInputs:
        """Tokenize a batch, left-padded, with `num_queries` query slots appended to every row."""
        n_q = self.num_queries if num_queries is None else num_queries
        images = list(images) if images is not None else [None] * len(texts)
        if len(images) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(images)} images")
        present = [im for im in images if im is not None]
        pixel_values = grid = None
        tokens_per_image: list[int] = []
        if present:
            pixel_values, grid = self.preprocess_images(present)
            tokens_per_image = (grid.prod(-1) // MERGE**2).tolist()
        rows: list[list[int]] = []
        types: list[list[int]] = []
        k = 0
        for text, img in zip(texts, images, strict=True):
            ids = self.tokenizer(self.chat_text(text, img is not None), add_special_tokens=False)["input_ids"]
            if img is not None:
                pos = ids.index(self.image_token_id)
                ids = ids[:pos] + [self.image_token_id] * tokens_per_image[k] + ids[pos + 1 :]
                k += 1
            ids = ids + [self.query_token_id] * n_q
            rows.append(ids)
            types.append([1 if t == self.image_token_id else 0 for t in ids])
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        mm_types = torch.zeros((len(rows), width), dtype=torch.int)
        for i, (ids, tt) in enumerate(zip(rows, types, strict=True)):
            input_ids[i, width - len(ids) :] = torch.tensor(ids)
            attention[i, width - len(ids) :] = 1
            mm_types[i, width - len(ids) :] = torch.tensor(tt, dtype=torch.int)
        query_mask = torch.zeros_like(attention, dtype=torch.bool)
        if n_q:
            query_mask[:, width - n_q :] = True
        return MetaQueryInputs(
            input_ids=input_ids,
            attention_mask=attention,
            mm_token_type_ids=mm_types,
            query_mask=query_mask,
            pixel_values=pixel_values,
            image_grid_thw=grid,
        )

    # ------------------------------------------------------------------ save / load
    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(path)
        self.image_processor.save_pretrained(path)
        (path / PROCESSOR_CONFIG).write_text(
            json.dumps(
                {
                    "num_queries": self.num_queries,
                    "image_size": self.image_size,
                    "system_prompt": self.system_prompt,
                },
                indent=2,
            )
        )

    @classmethod
    def from_pretrained(cls, path: str | Path, **overrides: Any) -> MetaQueryProcessor:
        """Load a processor folder (ours), or a Qwen2.5-VL model folder (tokenizer + preprocessor_config)."""
        from transformers import AutoTokenizer

        path = Path(path)
        tok = AutoTokenizer.from_pretrained(path)
        ip = (
            image_processor_class().from_pretrained(path)
            if (path / "preprocessor_config.json").is_file()
            else None
        )
        kwargs: dict[str, Any] = {}
        if (path / PROCESSOR_CONFIG).is_file():
            kwargs = json.loads((path / PROCESSOR_CONFIG).read_text())
        kwargs.update(overrides)
        return cls(tok, ip, **kwargs)
