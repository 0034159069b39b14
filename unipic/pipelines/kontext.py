"""UniPicKontextPipeline: text-to-image and instruction editing with SD3KontextTransformer.

The algorithm, in `__call__` order: encode the prompt (SD3's three encoders) -> prepare noise latents (+
encode the reference image for edits) -> for each scheduler sigma, predict the CFG-combined velocity and take
a flow-matching Euler step -> decode. The pieces are public methods because the trainer and Flow-GRPO reuse
them.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import PIL.Image
import torch
from diffusers import DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from diffusers.image_processor import VaeImageProcessor
from diffusers.pipelines.pipeline_utils import ImagePipelineOutput
from diffusers.utils.torch_utils import randn_tensor

from unipic.diffusion import euler_step, resolution_mu, sigma_to_timestep
from unipic.models import autoencoder as ae
from unipic.models.convert import load_kontext_transformer
from unipic.models.errors import ModelInputError, ModelLoadError
from unipic.models.kontext import SD3KontextTransformer
from unipic.models.text_encoders import encode_prompt as sd3_encode_prompt
from unipic.progress import progress

ImageInput = PIL.Image.Image | np.ndarray | torch.Tensor | Sequence[PIL.Image.Image]
OutputType = Literal["pil", "np", "pt", "latent"]


class PromptEncoding(NamedTuple):
    """SD3 prompt encodings: embeds (B, L, joint_dim), pooled (B, pooled_dim), and the unconditional pair."""

    embeds: torch.Tensor
    pooled: torch.Tensor
    neg_embeds: torch.Tensor | None = None
    neg_pooled: torch.Tensor | None = None


class UniPicKontextPipeline(DiffusionPipeline):
    """SD3.5M-Kontext sampling: `pipe(prompt)` for T2I, `pipe(instruction, image=src)` for editing.

    Classifier-free guidance is on text only, with the reference image in both branches (as UniPic2). Optional
    image guidance (`image_guidance_scale > 1`) adds a third branch without the reference, InstructPix2Pix
    style:
    v = v(no text, no ref) + s_img (v(no text, ref) - v(no text, no ref)) + s_txt (v(text, ref) - v(no text,
    ref)). The unconditional branch uses the empty-string encodings (SD3's negative prompt default).
    """

    model_cpu_offload_seq = "text_encoder->text_encoder_2->text_encoder_3->transformer->vae"
    _optional_components = ["text_encoder_3", "tokenizer_3"]

    def __init__(
        self,
        transformer: SD3KontextTransformer,
        scheduler: FlowMatchEulerDiscreteScheduler,
        vae: Any,
        text_encoder: Any,
        tokenizer: Any,
        text_encoder_2: Any,
        tokenizer_2: Any,
        text_encoder_3: Any = None,
        tokenizer_3: Any = None,
    ):
        super().__init__()
        self.register_modules(
            transformer=transformer,
            scheduler=scheduler,
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            text_encoder_2=text_encoder_2,
            tokenizer_2=tokenizer_2,
            text_encoder_3=text_encoder_3,
            tokenizer_3=tokenizer_3,
        )
        self.image_processor = VaeImageProcessor(vae_scale_factor=self.vae_scale_factor, do_normalize=True)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | Path,
        torch_dtype: torch.dtype | None = None,
        **components: Any,
    ) -> UniPicKontextPipeline:
        """Load a local diffusers folder: ours (bootstrap, training) or a stock SD3/SD3.5 pipeline folder.

        Every component is built explicitly from model_index.json (diffusers' generic loader cannot load
        component classes that live outside diffusers/transformers). The transformer is always an
        `SD3KontextTransformer`: a plain SD3 one is converted on load (unipic.models.convert). Components
        passed as keywords win.
        """
        folder = Path(pretrained_model_name_or_path)
        index_path = folder / "model_index.json"
        if not index_path.is_file():
            raise ModelLoadError(
                f"{folder} is not a diffusers pipeline folder (no model_index.json); "
                "create one with `unipic models bootstrap`, or materialize an s3:// URI first"
            )
        index = json.loads(index_path.read_text())
        unknown = set(components) - set(cls._component_names())
        if unknown:
            raise ModelInputError(f"unknown components {sorted(unknown)}; expected {cls._component_names()}")
        if "transformer" not in components:
            components["transformer"] = load_kontext_transformer(
                folder / "transformer", torch_dtype=torch_dtype
            )
        for name in cls._component_names():
            if name in components:
                continue
            spec = index.get(name)
            if not isinstance(spec, list) or spec[0] is None or not (folder / name).is_dir():
                if name in cls._optional_components:
                    components[name] = None
                    continue
                raise ModelLoadError(f"{folder} has no '{name}' component (model_index.json: {spec!r})")
            library, class_name = spec
            component_cls = getattr(importlib.import_module(library), class_name)
            component = component_cls.from_pretrained(folder / name)
            if torch_dtype is not None and isinstance(component, torch.nn.Module):
                component = component.to(torch_dtype)
            if isinstance(component, torch.nn.Module):
                component.eval()
            components[name] = component
        return cls(**components)

    @classmethod
    def _component_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    # --- geometry -------------------------------------------------------------------------------------------
    @property
    def vae_scale_factor(self) -> int:
        return ae.downsample_factor(self.vae)

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this (autoencoder downsampling x patch size)."""
        return self.vae_scale_factor * self.transformer.config.patch_size

    @property
    def max_image_side(self) -> int:
        return self.transformer.config.pos_embed_max_size * self.size_multiple

    @property
    def default_image_size(self) -> int:
        return self.transformer.config.sample_size * self.vae_scale_factor

    @property
    def max_sequence_length(self) -> int:
        return self.tokenizer_3.model_max_length if self.tokenizer_3 is not None else 256

    def check_size(self, height: int, width: int) -> None:
        """Refuse sizes the model cannot take, naming the limit (diffusers fails deep inside PatchEmbed)."""
        m, top = self.size_multiple, self.max_image_side
        for name, v in (("height", height), ("width", width)):
            if v <= 0 or v % m:
                raise ModelInputError(
                    f"{name}={v} must be a positive multiple of {m} (autoencoder x patch size)"
                )
            if v > top:
                raise ModelInputError(
                    f"{name}={v} is over {top} px, the largest this model can take "
                    f"(pos_embed_max_size {self.transformer.config.pos_embed_max_size} x {m})"
                )

    # --- the pieces -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_prompt(
        self,
        prompts: str | list[str],
        do_cfg: bool = True,
        num_images_per_prompt: int = 1,
        negative_prompt: str | list[str] | None = None,
    ) -> PromptEncoding:
        """-> PromptEncoding(embeds, pooled, neg_embeds, neg_pooled), repeated num_images_per_prompt times.

        `neg_*` are None when `do_cfg` is False; otherwise the encodings of `negative_prompt` (default "").
        The result unpacks as a 4-tuple, and can be passed whole as `embeds` to `predict_velocity`.
        """
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        embeds, pooled = self._encode(prompts)
        neg_embeds = neg_pooled = None
        if do_cfg:
            neg = negative_prompt if negative_prompt is not None else ""
            neg = [neg] * len(prompts) if isinstance(neg, str) else list(neg)
            if len(neg) != len(prompts):
                raise ModelInputError(f"{len(neg)} negative prompts for {len(prompts)} prompts")
            neg_embeds, neg_pooled = self._encode(neg)
        rep = lambda x: None if x is None else x.repeat_interleave(num_images_per_prompt, dim=0)  # noqa: E731
        return PromptEncoding(rep(embeds), rep(pooled), rep(neg_embeds), rep(neg_pooled))

    def _encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return sd3_encode_prompt(
            self.components,
            prompts,
            max_sequence_length=self.max_sequence_length,
            joint_attention_dim=self.transformer.config.joint_attention_dim,
            device=self._execution_device,
            dtype=self.transformer.dtype,
        )

    def preprocess_images(
        self, images: ImageInput, height: int | None = None, width: int | None = None
    ) -> torch.Tensor:
        """PIL / uint8 numpy HWC / float tensor (B,3,H,W) in [-1,1] -> tensor in [-1,1] at height x width."""
        if isinstance(images, torch.Tensor):
            x = images if images.ndim == 4 else images[None]
            if height is not None and tuple(x.shape[-2:]) != (height, width):
                x = torch.nn.functional.interpolate(
                    x.float(), size=(height, width), mode="bicubic", antialias=True
                )
            return x.float()
        if isinstance(images, np.ndarray) and images.dtype == np.uint8:
            arr = images if images.ndim == 4 else images[None]
            images = [PIL.Image.fromarray(a) for a in arr]
        if isinstance(images, PIL.Image.Image):
            images = [images]
        images = [im.convert("RGB") for im in images]
        return self.image_processor.preprocess(images, height=height, width=width).float()

    @torch.no_grad()
    def encode_image(
        self,
        images: ImageInput,
        height: int | None = None,
        width: int | None = None,
        generator: torch.Generator | None = None,
        sample_posterior: bool = False,
    ) -> torch.Tensor:
        """Images -> the DiT's latents (shifted and scaled). `height`/`width` resize the image first."""
        x = self.preprocess_images(images, height, width)
        return ae.encode_latents(self.vae, x, generator=generator, sample=sample_posterior).to(
            self.transformer.dtype
        )

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor, output_type: OutputType = "pt") -> Any:
        """Latents -> images: "pt" (B,3,H,W) in [0,1], "np" (B,H,W,3) in [0,1], "pil" list, or "latent"."""
        if output_type == "latent":
            return latents
        x = ae.decode_latents(self.vae, latents)
        return self.image_processor.postprocess(x.float(), output_type=output_type)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(C, h, w) of the latents at the default image size."""
        side = self.default_image_size // self.vae_scale_factor
        return (self.transformer.config.in_channels, side, side)

    def velocity(
        self,
        latents: torch.Tensor,
        t: torch.Tensor | float,
        embeds: torch.Tensor,
        pooled: torch.Tensor,
        ref_latents: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One transformer pass. `t` is the DiT timestep, sigma * 1000 (scalar or per sample)."""
        t = torch.as_tensor(t, device=latents.device, dtype=torch.float32)
        timestep = t.expand(latents.shape[0]) if t.ndim == 0 else t
        return self.transformer(
            hidden_states=latents,
            encoder_hidden_states=embeds,
            pooled_projections=pooled,
            timestep=timestep,
            ref_latents=ref_latents,
            return_dict=False,
        )[0]

    def predict_velocity(
        self,
        latents: torch.Tensor,
        t: torch.Tensor | float,
        embeds: torch.Tensor | PromptEncoding,
        pooled: torch.Tensor | None = None,
        ref_latents: torch.Tensor | None = None,
        guidance_scale: float = 1.0,
        neg_embeds: torch.Tensor | None = None,
        neg_pooled: torch.Tensor | None = None,
        image_guidance_scale: float = 1.0,
    ) -> torch.Tensor:
        """The guided velocity at DiT timestep `t` (= sigma * 1000); branches run as batched calls.

        `embeds` is a tensor (then `pooled`, and for guidance `neg_embeds`/`neg_pooled`, are given separately)
        or the `PromptEncoding` from `encode_prompt`, which carries all four. guidance_scale <= 1 -> the
        conditional velocity alone. The reference (if any) is in both text branches. `image_guidance_scale !=
        1` (needs a reference) adds the branch with neither text nor reference.
        """
        if isinstance(embeds, PromptEncoding):
            embeds, pooled, neg_embeds, neg_pooled = (
                embeds.embeds,
                embeds.pooled,
                neg_embeds if neg_embeds is not None else embeds.neg_embeds,
                neg_pooled if neg_pooled is not None else embeds.neg_pooled,
            )
        if pooled is None:
            raise ModelInputError(
                "pooled prompt embeddings are missing; pass the PromptEncoding from encode_prompt"
            )
        use_cfg = guidance_scale > 1.0
        use_img = image_guidance_scale != 1.0
        if use_img and ref_latents is None:
            raise ModelInputError("image_guidance_scale != 1 needs a reference image (editing)")
        if not use_cfg and not use_img:
            return self.velocity(latents, t, embeds, pooled, ref_latents)
        if neg_embeds is None or neg_pooled is None:
            raise ModelInputError(
                "guidance needs the unconditional embeddings: encode_prompt(..., do_cfg=True)"
            )
        b = latents.shape[0]
        t = torch.as_tensor(t, device=latents.device, dtype=torch.float32)
        t = t.expand(b) if t.ndim == 0 else t
        x2, t2 = torch.cat([latents, latents]), torch.cat([t, t])
        emb2, pool2 = torch.cat([embeds, neg_embeds]), torch.cat([pooled, neg_pooled])
        ref2 = None if ref_latents is None else torch.cat([ref_latents, ref_latents])
        v_cond, v_unc = self.velocity(x2, t2, emb2, pool2, ref2).chunk(2)
        if not use_img:
            return v_unc + guidance_scale * (v_cond - v_unc)
        # The branch without the reference has a shorter sequence, so it is a separate call.
        v_none = self.velocity(latents, t, neg_embeds, neg_pooled)
        g = guidance_scale if use_cfg else 1.0
        return v_none + image_guidance_scale * (v_unc - v_none) + g * (v_cond - v_unc)

    def prepare_latents(
        self,
        batch_size: int,
        height: int,
        width: int,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Initial noise at sigma = 1. A list of generators gives each image its own stream."""
        shape = (
            batch_size,
            self.transformer.config.in_channels,
            height // self.vae_scale_factor,
            width // self.vae_scale_factor,
        )
        if latents is not None:
            if tuple(latents.shape) != shape:
                raise ModelInputError(f"latents have shape {tuple(latents.shape)}, expected {shape}")
            return latents.to(self._execution_device, self.transformer.dtype)
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ModelInputError(f"{len(generator)} generators for {batch_size} images; give one per image")
        return randn_tensor(
            shape, generator=generator, device=self._execution_device, dtype=self.transformer.dtype
        )

    def sigma_schedule(self, num_inference_steps: int, image_seq_len: int) -> torch.Tensor:
        """The scheduler's sigmas (num_inference_steps + 1 values, 1 -> 0), resolution-shifted if set."""
        cfg = self.scheduler.config
        mu = None
        if cfg.get("use_dynamic_shifting", False):
            mu = resolution_mu(
                image_seq_len, cfg.base_image_seq_len, cfg.max_image_seq_len, cfg.base_shift, cfg.max_shift
            )
        self.scheduler.set_timesteps(num_inference_steps, device=self._execution_device, mu=mu)
        return self.scheduler.sigmas

    # --- the algorithm --------------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        image: ImageInput | list[ImageInput] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 20,
        guidance_scale: float = 4.0,
        image_guidance_scale: float = 1.0,
        negative_prompt: str | list[str] | None = None,
        num_images_per_prompt: int = 1,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: OutputType = "pil",
        return_dict: bool = True,
        show_progress: bool = False,
    ) -> ImagePipelineOutput | tuple:
        """Generate (image=None) or edit (image = one source per prompt, or one for all prompts)."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts:
            raise ModelInputError("no prompt given")
        if num_inference_steps < 1:
            raise ModelInputError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        if output_type not in ("pil", "np", "pt", "latent"):
            raise ModelInputError(f"output_type must be pil, np, pt or latent, got {output_type!r}")
        ref_pixels = None
        if image is not None:
            ref_pixels = self.preprocess_images(image)
            if ref_pixels.shape[0] == 1 and len(prompts) > 1:
                ref_pixels = ref_pixels.expand(len(prompts), -1, -1, -1)
            if ref_pixels.shape[0] != len(prompts):
                raise ModelInputError(f"{ref_pixels.shape[0]} source images for {len(prompts)} instructions")
            height = height or ref_pixels.shape[-2]
            width = width or ref_pixels.shape[-1]
        height = height or self.default_image_size
        width = width or self.default_image_size
        self.check_size(height, width)
        n = len(prompts) * num_images_per_prompt
        do_cfg = guidance_scale > 1.0 or image_guidance_scale != 1.0

        # 1. prompt
        embeds, pooled, neg_embeds, neg_pooled = self.encode_prompt(
            prompts, do_cfg, num_images_per_prompt, negative_prompt
        )
        # 2. latents (+ reference)
        ref_latents = None
        if ref_pixels is not None:
            ref_latents = self.encode_image(ref_pixels, height, width).repeat_interleave(
                num_images_per_prompt, 0
            )
        latents = self.prepare_latents(n, height, width, generator, latents)
        # 3. Euler over the scheduler's sigmas
        seq_len = (latents.shape[-2] // self.transformer.config.patch_size) * (
            latents.shape[-1] // self.transformer.config.patch_size
        )
        sigmas = self.sigma_schedule(num_inference_steps, seq_len)
        steps = range(num_inference_steps)
        for i in (
            progress(steps, total=num_inference_steps, desc="sampling", unit="step")
            if show_progress
            else steps
        ):
            v = self.predict_velocity(
                latents,
                sigma_to_timestep(sigmas[i]),
                embeds,
                pooled,
                ref_latents,
                guidance_scale,
                neg_embeds,
                neg_pooled,
                image_guidance_scale,
            )
            latents = euler_step(latents, v, sigmas[i], sigmas[i + 1])
        # 4. decode
        images = self.decode_latents(latents, output_type)
        self.maybe_free_model_hooks()
        return ImagePipelineOutput(images=images) if return_dict else (images,)
