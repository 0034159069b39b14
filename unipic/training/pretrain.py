"""Pre-training of UniPic2-SD3.5M-Kontext: joint text-to-image + editing with flow matching (issue #4).

`PretrainTrainer` is the subclass of the base `Trainer` that knows what a batch means: T2I batches
(image, caption) and edit batches (source, instruction, target) alternate; both are rectified-flow
steps (x_t = (1 - t) x0 + t eps, target eps - x0, t from SD3's logit-normal sampler with an optional
resolution shift), and an edit batch passes the source latents as `ref_latents`. Captions are dropped
to "" at `caption_dropout` so the model learns the unconditional branch CFG needs.

`run_pretrain` is the stage: base model folder (or s3:// URI) + dataset -> trained pipeline folder with
the EMA weights in `transformer/`, a lineage file, and publication to the object store for s3:// outputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from unipic.config.base import config_hash
from unipic.config.train import PretrainConfig
from unipic.device import resolve_device
from unipic.lineage import Lineage
from unipic.logging import get_logger
from unipic.training.data import DatasetIndex, EditBatch, T2IBatch, build_joint_batches, read_shard
from unipic.training.io import export_pipeline, resolve_input
from unipic.training.parallel import ParallelContext, init_parallel
from unipic.training.trainer import StepOutput, Trainer, TrainResult

log = get_logger(__name__)



class PretrainTrainer(Trainer):
    section = "pretrain"

    def __init__(self, cfg: PretrainConfig, work_dir: Path, *, store_cfg: Any = None,
                 ctx: ParallelContext | None = None):
        from unipic.pipelines.kontext import UniPicKontextPipeline

        work_dir = Path(work_dir)
        ctx = ctx or init_parallel(cfg.deepspeed)
        cache = work_dir / "cache"
        self.base_dir = resolve_input(cfg.base_model, "base model folder", "pretrain.base_model", store_cfg,
                                      cache / "models")
        self.dataset_dir = resolve_input(cfg.dataset, "dataset", "pretrain.dataset", store_cfg, cache / "data")
        self.pipe = UniPicKontextPipeline.from_pretrained(self.base_dir)
        self.pipe.to(resolve_device(cfg.device, ctx.local_rank, key="pretrain.device"))
        for name in ("vae", "text_encoder", "text_encoder_2", "text_encoder_3"):
            module = getattr(self.pipe, name, None)
            if isinstance(module, torch.nn.Module):
                module.requires_grad_(False).eval()
        transformer = self.pipe.transformer
        transformer.requires_grad_(True)
        self.patch = transformer.config.patch_size
        loaders = None
        if cfg.cache_latents:
            from unipic.training.latent_cache import LatentCache

            self.latent_cache = LatentCache.build(self.pipe, self.dataset_dir, cfg.split, work_dir / "cache" / "latents",
                                                  self.base_dir, ctx)
            loaders = self.latent_cache.loaders()
        else:
            self.latent_cache = None
        data, self.dataset_info = build_joint_batches(
            self.dataset_dir, batch_size=cfg.batch_size, edit_ratio=cfg.edit_schedule(), seed=cfg.seed, split=cfg.split,
            rank=ctx.rank, world_size=ctx.world_size, cache_loaders=loaders, task_weights=cfg.task_weights,
            edit_batch_size=cfg.edit_batch_size,
        )
        self._empty: tuple[torch.Tensor, torch.Tensor] | None = None
        self._sample_edits: list[tuple[Any, str, Any]] | None = None
        super().__init__(cfg, transformer, data, work_dir, ctx=ctx, store_cfg=store_cfg)
        self.cfg: PretrainConfig = cfg

    # ----- memory -------------------------------------------------------------------------------

    def estimate_memory_bytes(self, model: torch.nn.Module) -> int | None:
        from unipic.training.memory import estimate_pretrain_bytes

        return estimate_pretrain_bytes(model, self.cfg, self.pipe)

    # ----- one step -----------------------------------------------------------------------------

    def empty_prompt(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._empty is None:
            enc = self.pipe.encode_prompt([""], do_cfg=False)
            self._empty = (enc.embeds, enc.pooled)
        return self._empty

    def encode_text(self, texts: list[str], drop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        texts = ["" if d else t for t, d in zip(texts, drop.tolist())]
        enc = self.pipe.encode_prompt(texts, do_cfg=False)
        return enc.embeds, enc.pooled

    def batch_inputs(self, batch: T2IBatch | EditBatch, drop: torch.Tensor):
        """-> (x0, ref_latents | None, embeds, pooled); from the latent cache when there is one."""
        if batch.cached:
            c = batch.cached
            x0, ref = c["latents"], c.get("ref_latents")
            embeds, pooled = c["embeds"].clone(), c["pooled"].clone()
            if drop.any():
                e_emb, e_pool = self.empty_prompt()
                embeds[drop], pooled[drop] = e_emb.to(embeds.dtype), e_pool.to(pooled.dtype)
            return x0, ref, embeds, pooled
        texts = batch.captions if isinstance(batch, T2IBatch) else batch.instructions
        embeds, pooled = self.encode_text(texts, drop)
        dev = self.device
        if isinstance(batch, T2IBatch):
            return self.pipe.encode_image(batch.images.to(dev)), None, embeds, pooled
        return (self.pipe.encode_image(batch.targets.to(dev)), self.pipe.encode_image(batch.sources.to(dev)),
                embeds, pooled)

    def sample_sigmas(self, n: int, image_tokens: int) -> torch.Tensor:
        """Training noise levels: SD3's logit-normal (or uniform / mode) draw, then a static or a
        resolution-dependent shift."""
        from unipic.diffusion import resolution_mu, sample_sigmas, time_shift

        ts = self.cfg.timesteps
        sigmas = sample_sigmas(n, ts.weighting, logit_mean=ts.logit_mean, logit_std=ts.logit_std,
                               mode_scale=ts.mode_scale, shift=1.0 if ts.resolution_shift else ts.shift,
                               generator=self.generator)
        if ts.resolution_shift:
            sigmas = time_shift(resolution_mu(image_tokens), sigmas).clamp(1e-5, 1 - 1e-5)
        return sigmas

    def forward_backward_step(self, batch: T2IBatch | EditBatch) -> StepOutput:
        cfg, g = self.cfg, self.generator
        n = len(batch)
        drop = torch.rand(n, generator=g) < cfg.caption_dropout
        with torch.no_grad():
            x0, ref, embeds, pooled = self.batch_inputs(batch, drop)
        x0 = x0.float()
        dev = self.device
        x0, embeds, pooled = x0.to(dev), embeds.to(dev), pooled.to(dev)
        ref = ref.to(dev) if ref is not None else None
        from unipic.diffusion import add_noise, sigma_to_timestep, velocity_target

        grid = (x0.shape[-2] // self.patch) * (x0.shape[-1] // self.patch)
        sigmas = self.sample_sigmas(n, grid)
        noise = torch.randn(x0.shape, generator=g, dtype=x0.dtype).to(dev)
        sigmas = sigmas.to(dev)
        x_t = add_noise(x0, noise, sigmas)
        target = velocity_target(x0, noise)
        with self.autocast():
            pred = self.forward_model(hidden_states=x_t, encoder_hidden_states=embeds, pooled_projections=pooled,
                                      timestep=sigma_to_timestep(sigmas), ref_latents=ref, return_dict=False)[0]
        loss = F.mse_loss(pred.float(), target)
        self.backward(loss)
        tokens = n * grid * (2 if ref is not None else 1)
        return StepOutput(loss=loss.detach(), metrics={f"loss_{batch.kind}": float(loss.detach())}, tokens=tokens, samples=n)

    # ----- samples ------------------------------------------------------------------------------

    def _edit_examples(self, k: int = 4) -> list[tuple[Any, str, Any]]:
        """A fixed handful of edit triplets from the dataset (first shard, first k) for the sample grid."""
        if self._sample_edits is None:
            self._sample_edits = []
            rows = DatasetIndex(self.dataset_dir, "all").rows("edit")
            if len(rows):
                from PIL import Image
                import io

                shard = sorted(rows["shard"].unique())[0]
                members = read_shard(self.dataset_dir / shard)
                sub = rows[rows["shard"] == shard].sort_values("sample_id").head(k)
                for sid, text in zip(sub["sample_id"], sub["text"]):
                    m = members.get(str(sid), {})
                    if "src.png" in m and "tgt.png" in m:
                        self._sample_edits.append((Image.open(io.BytesIO(m["src.png"])).convert("RGB"), str(text),
                                                   Image.open(io.BytesIO(m["tgt.png"])).convert("RGB")))
        return self._sample_edits

    @torch.no_grad()
    def sample_images(self) -> dict[str, list[Any]] | None:
        cfg = self.cfg
        out: dict[str, list[Any]] = {}
        prompts = list(cfg.sample_prompts)
        with self.autocast():
            if prompts:
                gens = [torch.Generator().manual_seed(1000 + i) for i in range(len(prompts))]
                out["t2i"] = self.pipe(prompts, num_inference_steps=cfg.sample_steps,
                                       guidance_scale=cfg.sample_guidance, generator=gens).images
            edits = self._edit_examples(cfg.sample_edits) if cfg.trains_edits and cfg.sample_edits else []
            if edits:
                gens = [torch.Generator().manual_seed(2000 + i) for i in range(len(edits))]
                srcs = [e[0] for e in edits]
                outs = self.pipe([e[1] for e in edits], image=srcs, num_inference_steps=cfg.sample_steps,
                                 guidance_scale=cfg.sample_guidance, generator=gens).images
                out["edit src"], out["edit out"], out["edit tgt"] = srcs, outs, [e[2] for e in edits]
        return out or None

    # ----- export -------------------------------------------------------------------------------

    def lineage(self) -> Lineage:
        return Lineage(stage="pretrain", config_hash=config_hash(self.cfg), dataset_uri=self.cfg.dataset,
                       dataset_rev=self.cfg.dataset_rev, dataset_hash=self.dataset_info.total_sha256,
                       parent_model=self.cfg.base_model)

    def checkpoint_metadata(self) -> dict[str, Any]:
        return {"stage": "pretrain", "config_hash": config_hash(self.cfg),
                "dataset_hash": self.dataset_info.total_sha256}

    def export(self, output: str | Path, result: TrainResult | None = None) -> str:
        """Write the pipeline folder with the EMA transformer weights + lineage; publish if s3://.
        Collective under DeepSpeed (ZeRO-3 gathers); only rank 0 writes."""
        lineage = self.lineage()
        out = str(output)
        with self.ema_weights():
            if not self.ctx.is_main:
                return out
            record = {"kind": "pretrain", "steps": self.step,
                      "final_loss": (result.losses.get(result.last_step) if result else None),
                      "ema_decay": self.cfg.ema_decay, "exported_weights": "ema" if self.ema else "live"}
            was = self.model.training
            self.model.eval()
            try:
                export_pipeline(self.pipe, out, lineage=lineage, record=record, work_dir=self.work_dir,
                                store_cfg=self.store_cfg, card_from=self.base_dir,
                                card_update={"kind": "pretrain", "parent": str(self.cfg.base_model),
                                             "steps": self.step})
            finally:
                self.model.train(was)
        log.info("exported the trained pipeline to %s", out)
        return out


@dataclass
class PretrainResult:
    model: str | None  # None when the run stopped before cfg.steps
    lineage: Lineage
    train: TrainResult
    work_dir: Path


def run_pretrain(cfg: PretrainConfig, work_dir: str | Path, *, store_cfg: Any = None,
                 resume: bool | Path = False, stop_at: int | None = None) -> PretrainResult:
    """The stage: train from `cfg.base_model` on `cfg.dataset`, export to `cfg.output` (or work_dir/model).

    `stop_at` ends the run early at that step (checkpointed, resumable), as a time-boxed job would."""
    work_dir = Path(work_dir)
    trainer = PretrainTrainer(cfg, work_dir, store_cfg=store_cfg)
    if trainer.ctx.is_main:
        (work_dir / "config.json").write_text(json.dumps(
            {"config_hash": config_hash(cfg), "pretrain": json.loads(cfg.model_dump_json())}, indent=2))
    result = trainer.train(resume=resume, stop_at=stop_at)
    if result.last_step < cfg.steps:
        log.info("stopped at step %d of %d: not exporting; continue with --resume", result.last_step, cfg.steps)
        return PretrainResult(model=None, lineage=trainer.lineage(), train=result, work_dir=work_dir)
    output = cfg.output or str(work_dir / "model")
    model = trainer.export(output, result)
    return PretrainResult(model=model, lineage=trainer.lineage(), train=result, work_dir=work_dir)

