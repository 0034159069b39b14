"""UniPicMetaQueryPipeline: the Kontext pipeline with SD3's three text encoders replaced by MetaQuery.

A frozen Qwen2.5-VL reads the prompt (and, for editing, the source image), N learnable queries collect its
last-layer states, and the connector turns them into the DiT's `prompt_embeds` / `pooled_prompt_embeds`
(notes/unipic2.md §4). Everything after `encode_prompt` — latents, the reference tokens, CFG, Euler steps,
decoding — is `UniPicKontextPipeline`'s, unchanged. `understand()` is the frozen MLLM answering a question.

Where the edit source goes is one switch, `image_to` (UniPic2 Table 2): "both" (UniPic2), "mllm" (MetaQuery's
own recipe), "dit" (Kontext only), "none".

Folder layout (diffusers `model_index.json` + one folder per component):
    transformer/ vae/ scheduler/   the Kontext DiT, autoencoder, flow-matching scheduler
    connector/                     queries + connector (`MetaQueryConnector`)
    processor/                     tokenizer + image processor + query/prompt settings
    mllm/                          the Qwen2.5-VL weights, or `reference.json` naming where they live
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import PIL.Image
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from unipic.config.metaquery import ImageRoute, MetaQueryConfig
from unipic.logging import get_logger
from unipic.models.errors import ModelInputError, ModelLoadError
from unipic.models.metaquery.connector import MetaQueryConnector
from unipic.models.metaquery.mllm import load_mllm, read_reference, write_reference
from unipic.models.metaquery.model import MetaQueryConditioner, build_conditioner, image_to_dit, image_to_mllm
from unipic.models.metaquery.processor import MetaQueryProcessor
from unipic.pipelines.kontext import ImageInput, PromptEncoding, UniPicKontextPipeline

log = get_logger(__name__)

ROUTES = ("both", "mllm", "dit", "none")
SETTINGS_FILE = "metaquery.json"


class UniPicMetaQueryPipeline(UniPicKontextPipeline):
    """`pipe(prompt)` generates, `pipe(instruction, image=src)` edits, `pipe.understand(image, question)` answers."""

    model_cpu_offload_seq = "mllm->connector->transformer->vae"
    _optional_components = ["mllm", "processor"]  # saved by hand: a reference, and a non-diffusers class

    def __init__(
        self,
        transformer: Any,
        scheduler: FlowMatchEulerDiscreteScheduler,
        vae: Any,
        mllm: Any,
        processor: MetaQueryProcessor,
        connector: MetaQueryConnector,
    ) -> None:
        super(UniPicKontextPipeline, self).__init__()
        self.register_modules(
            transformer=transformer,
            scheduler=scheduler,
            vae=vae,
            mllm=mllm,
            processor=processor,
            connector=connector,
        )
        from diffusers.image_processor import VaeImageProcessor

        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor, do_normalize=True)
        self.conditioner = MetaQueryConditioner(mllm, processor, connector)
        self.image_to: ImageRoute = "both"
        self.t2i_template = "Generate an image: {prompt}"
        self.edit_template = "{prompt}"
        self.mllm_source: str | None = None
        self._mllm_images: list[PIL.Image.Image | None] | None = None
        self._editing = False

    # --- settings -------------------------------------------------------------------------------------------
    def configure(
        self,
        *,
        image_to: ImageRoute | None = None,
        t2i_template: str | None = None,
        edit_template: str | None = None,
    ) -> UniPicMetaQueryPipeline:
        if image_to is not None:
            if image_to not in ROUTES:
                raise ModelInputError(f"image_to={image_to!r}: use one of {', '.join(ROUTES)}")
            self.image_to = image_to
        if t2i_template is not None:
            self.t2i_template = t2i_template
        if edit_template is not None:
            self.edit_template = edit_template
        for name, tpl in (("t2i_template", self.t2i_template), ("edit_template", self.edit_template)):
            if "{prompt}" not in tpl:
                raise ModelInputError(f"{name}={tpl!r} must contain '{{prompt}}'")
        return self

    @property
    def max_sequence_length(self) -> int:
        return int(self.connector.config.num_queries)

    # --- prompt encoding: the only part that differs from Kontext --------------------------------------------
    def template(self, prompts: Sequence[str], editing: Sequence[bool]) -> list[str]:
        return [
            (self.edit_template if e else self.t2i_template).format(prompt=p)
            for p, e in zip(prompts, editing, strict=True)
        ]

    def encode_conditions(
        self,
        prompts: Sequence[str],
        images: Sequence[PIL.Image.Image | None] | None = None,
        editing: Sequence[bool] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw prompts (+ the images the MLLM should see) → (prompt_embeds, pooled). With grad when enabled,
        so the trainer uses this same function."""
        images = list(images) if images is not None else [None] * len(prompts)
        editing = list(editing) if editing is not None else [im is not None for im in images]
        embeds, pooled = self.conditioner.encode(self.template(prompts, editing), images)
        return embeds.to(self.transformer.dtype), pooled.to(self.transformer.dtype)

    @torch.no_grad()
    def encode_prompt(
        self,
        prompts: str | list[str],
        do_cfg: bool = True,
        num_images_per_prompt: int = 1,
        negative_prompt: str | list[str] | None = None,
        images: Sequence[PIL.Image.Image | None] | None = None,
    ) -> PromptEncoding:
        """PromptEncoding(embeds, pooled, neg_embeds, neg_pooled). The negative goes through the same template, MLLM and
        connector (UniPic2 scripts) and sees the same image, so guidance acts on the text only."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if images is None:
            images = self._mllm_images if self._mllm_images is not None else [None] * len(prompts)
        images = list(images)
        editing = [True] * len(prompts) if self._editing else [im is not None for im in images]
        embeds, pooled = self.encode_conditions(prompts, images, editing)
        neg_embeds = neg_pooled = None
        if do_cfg:
            neg = negative_prompt if negative_prompt is not None else ""
            neg = [neg] * len(prompts) if isinstance(neg, str) else list(neg)
            if len(neg) != len(prompts):
                raise ModelInputError(f"{len(neg)} negative prompts for {len(prompts)} prompts")
            neg_embeds, neg_pooled = self.encode_conditions(neg, images, editing)
        rep = lambda x: None if x is None else x.repeat_interleave(num_images_per_prompt, dim=0)
        return PromptEncoding(rep(embeds), rep(pooled), rep(neg_embeds), rep(neg_pooled))

    def _as_pil_list(self, image: ImageInput | list[ImageInput], n: int) -> list[PIL.Image.Image]:
        if isinstance(image, PIL.Image.Image):
            return [image] * n
        if isinstance(image, (list, tuple)) and all(isinstance(i, PIL.Image.Image) for i in image):
            imgs = list(image)
        else:
            x = self.preprocess_images(image)
            imgs = self.image_processor.postprocess(x, output_type="pil")
        if len(imgs) == 1 and n > 1:
            imgs = imgs * n
        if len(imgs) != n:
            raise ModelInputError(f"{len(imgs)} source images for {n} instructions")
        return imgs

    # --- the algorithm --------------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        image: ImageInput | list[ImageInput] | None = None,
        height: int | None = None,
        width: int | None = None,
        *,
        image_to: ImageRoute | None = None,
        **kwargs: Any,
    ) -> Any:
        """Kontext sampling with MetaQuery conditions. `image_to` overrides the pipeline's route for this call."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        route = image_to or self.image_to
        if route not in ROUTES:
            raise ModelInputError(f"image_to={route!r}: use one of {', '.join(ROUTES)}")
        dit_image = None
        if image is not None:
            pil = self._as_pil_list(image, len(prompts))
            height = height or pil[0].size[1]
            width = width or pil[0].size[0]
            self._mllm_images = pil if image_to_mllm(route) else [None] * len(prompts)
            self._editing = True
            dit_image = image if image_to_dit(route) else None
        try:
            return super().__call__(prompts, image=dit_image, height=height, width=width, **kwargs)
        finally:
            self._mllm_images = None
            self._editing = False

    @torch.no_grad()
    def understand(
        self,
        image: PIL.Image.Image | Sequence[PIL.Image.Image] | None,
        question: str | list[str],
        *,
        max_new_tokens: int = 32,
    ) -> list[str]:
        """Image understanding: the frozen Qwen2.5-VL answers (UniPic2's `unipic2_mq_i2t.py` is a plain generate)."""
        questions = [question] if isinstance(question, str) else list(question)
        if image is None:
            images: list[PIL.Image.Image | None] = [None] * len(questions)
        else:
            images = [image] * len(questions) if isinstance(image, PIL.Image.Image) else list(image)
        return self.conditioner.answer(questions, images, max_new_tokens=max_new_tokens)

    # --- building, saving, loading --------------------------------------------------------------------------
    @classmethod
    def from_kontext(
        cls,
        kontext: UniPicKontextPipeline,
        cfg: MetaQueryConfig,
        store: Any | None = None,
    ) -> UniPicMetaQueryPipeline:
        """Start a MetaQuery model from a Kontext pipeline: its DiT/VAE/scheduler + a new conditioner sized to it."""
        tcfg = kontext.transformer.config
        cond = build_conditioner(
            cfg,
            joint_attention_dim=tcfg.joint_attention_dim,
            pooled_projection_dim=tcfg.pooled_projection_dim,
            store=store,
        )
        pipe = cls(
            transformer=kontext.transformer,
            scheduler=kontext.scheduler,
            vae=kontext.vae,
            mllm=cond.mllm,
            processor=cond.processor,
            connector=cond.connector,
        )
        pipe.mllm_source = cfg.mllm.pretrained
        return pipe.configure(
            image_to=cfg.image_to, t2i_template=cfg.t2i_template, edit_template=cfg.edit_template
        )

    def settings(self) -> dict[str, Any]:
        return {
            "image_to": self.image_to,
            "t2i_template": self.t2i_template,
            "edit_template": self.edit_template,
            "mllm_source": self.mllm_source,
        }

    def save_pretrained(
        self, save_directory: str | Path, mllm_reference: bool | None = None, **kwargs: Any
    ) -> None:
        """Save every component. `mllm_reference` (default: when the MLLM came from a folder/URI) writes
        `mllm/reference.json` instead of copying the frozen weights, which never change here."""
        out = Path(save_directory)
        use_ref = bool(self.mllm_source) if mllm_reference is None else mllm_reference
        if use_ref and not self.mllm_source:
            raise ModelInputError(
                "mllm_reference=True but this pipeline's MLLM was not loaded from a folder or URI"
            )
        kwargs.setdefault("safe_serialization", True)
        mllm, processor = self.mllm, self.processor
        self.register_modules(processor=None, **({"mllm": None} if use_ref else {}))
        try:
            super().save_pretrained(out, **kwargs)
        finally:
            self.register_modules(mllm=mllm, processor=processor)
        processor.save_pretrained(out / "processor")
        index = json.loads((out / "model_index.json").read_text())
        index["processor"] = [MetaQueryProcessor.__module__, MetaQueryProcessor.__name__]
        if use_ref:
            write_reference(out / "mllm", str(self.mllm_source))
            index["mllm"] = ["transformers", type(mllm).__name__]
        (out / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
        (out / SETTINGS_FILE).write_text(json.dumps(self.settings(), indent=2))

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | Path, store: Any | None = None, **kwargs: Any
    ) -> UniPicMetaQueryPipeline:
        path = Path(pretrained_model_name_or_path)
        if not (path / "model_index.json").is_file():
            raise ModelLoadError(
                f"{path} is not a model folder (no model_index.json); give the output folder of "
                "`unipic train metaquery` or a downloaded MetaQuery model"
            )
        index = json.loads((path / "model_index.json").read_text())
        if index.get("_class_name") != cls.__name__:
            raise ModelLoadError(
                f"{path} holds a {index.get('_class_name')}, not a {cls.__name__}; load it with "
                "unipic.pipelines.metaquery.load_pipeline, which picks the class"
            )
        settings = json.loads((path / SETTINGS_FILE).read_text()) if (path / SETTINGS_FILE).is_file() else {}
        processor = MetaQueryProcessor.from_pretrained(path / "processor")
        source = read_reference(path / "mllm")
        if source is not None and "mllm" not in kwargs:
            kwargs["mllm"], _ = load_mllm(source, store=store)
        kwargs.setdefault("processor", processor)
        kwargs.setdefault("connector", MetaQueryConnector.from_pretrained(path / "connector"))
        pipe = super().from_pretrained(path, **kwargs)
        pipe.mllm.requires_grad_(False).eval()
        pipe.mllm_source = source or settings.get("mllm_source")
        return pipe.configure(
            image_to=settings.get("image_to"),
            t2i_template=settings.get("t2i_template"),
            edit_template=settings.get("edit_template"),
        )


def load_pipeline(path: str | Path, **kwargs: Any) -> Any:
    """Load a model folder with the class its `model_index.json` names (Kontext or MetaQuery), so
    `unipic generate --model DIR` works for both."""
    path = Path(path)
    index_file = path / "model_index.json"
    if not index_file.is_file():
        raise ModelLoadError(f"{path} is not a model folder (no model_index.json)")
    name = json.loads(index_file.read_text()).get("_class_name")
    if name == UniPicMetaQueryPipeline.__name__:
        return UniPicMetaQueryPipeline.from_pretrained(path, **kwargs)
    if name == UniPicKontextPipeline.__name__:
        return UniPicKontextPipeline.from_pretrained(path, **kwargs)
    raise ModelLoadError(f"{path} holds a {name}; expected UniPicKontextPipeline or UniPicMetaQueryPipeline")
