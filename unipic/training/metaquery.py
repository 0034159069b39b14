"""MetaQuery joint training (issue #6): learnable queries + connector (+ the Kontext DiT) under a frozen Qwen2.5-VL.

Two stages (notes/unipic2.md §4):
1. align: MLLM and DiT frozen; queries + connector learn on text-to-image.
2. unified: MLLM frozen; queries + connector + DiT learn jointly on text-to-image and editing.
`train_connector` / `train_dit` are the Table 3 ablation switches. The loss is the pre-training loss
(rectified flow, SD3 timestep sampling), with `prompt_embeds`/`pooled` computed *with grad* through the
connector. For edit batches the source image goes to the MLLM, to the DiT's reference tokens, or both,
as `metaquery.image_to` says (Table 2 ablation), and caption dropout empties the instruction but keeps the image.

The base `Trainer` does the rest (bf16 autocast, DeepSpeed, EMA, exact-resume checkpoints, metrics, grids).
The trained module is `MetaQueryTrainable` (connector + DiT); the frozen MLLM stays outside it, so it is
never in the optimizer, the EMA or a checkpoint.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from unipic.config.base import config_hash
from unipic.config.metaquery import MetaQueryConfig, MetaQueryTrainConfig
from unipic.device import resolve_device
from unipic.errors import ConfigError
from unipic.lineage import Lineage
from unipic.logging import get_logger
from unipic.models.metaquery.model import image_to_dit, image_to_mllm
from unipic.training.data import DatasetIndex, EditBatch, T2IBatch, build_joint_batches, read_shard
from unipic.training.io import export_pipeline, resolve_input
from unipic.training.parallel import ParallelContext, init_parallel
from unipic.training.trainer import StepOutput, Trainer, TrainResult

log = get_logger(__name__)



def to_pil(images: torch.Tensor) -> list[Any]:
    """(B, 3, H, W) in [-1, 1] → PIL images (what the MLLM's processor takes)."""
    from PIL import Image

    arr = (
        ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    )
    return [Image.fromarray(a) for a in arr]


class MetaQueryTrainable(nn.Module):
    """What the optimizer sees: the connector (with the queries) and the DiT. The pipeline, which holds the
    frozen MLLM, is kept as a plain attribute so that it is not a submodule."""

    def __init__(self, pipe: Any) -> None:
        super().__init__()
        self.connector = pipe.connector
        self.transformer = pipe.transformer
        object.__setattr__(self, "pipe", pipe)

    def forward(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        texts: list[str],
        mllm_images: list[Any],
        editing: list[bool],
        ref_latents: torch.Tensor | None = None,
    ) -> torch.Tensor:
        embeds, pooled = self.pipe.encode_conditions(texts, mllm_images, editing)
        dtype = self.transformer.dtype
        return self.transformer(
            hidden_states=latents.to(dtype),
            encoder_hidden_states=embeds.to(dtype),
            pooled_projections=pooled.to(dtype),
            timestep=timestep,
            ref_latents=None if ref_latents is None else ref_latents.to(dtype),
            return_dict=False,
        )[0]


def load_start_pipeline(init_dir: Path, mq: MetaQueryConfig, store_cfg: Any = None) -> Any:
    """A Kontext pipeline folder → a new MetaQuery pipeline on its DiT; a MetaQuery folder → continue from it."""
    from unipic.pipelines.kontext import UniPicKontextPipeline
    from unipic.pipelines.metaquery import UniPicMetaQueryPipeline

    index = init_dir / "model_index.json"
    if not index.is_file():
        raise ConfigError(
            f"{init_dir} has no model_index.json: metaquery.train.init_from must be a Kontext or "
            "MetaQuery model folder (the output of `unipic train pretrain` or `unipic train metaquery`)"
        )
    name = json.loads(index.read_text()).get("_class_name")
    if name == UniPicMetaQueryPipeline.__name__:
        pipe = UniPicMetaQueryPipeline.from_pretrained(init_dir, store=store_cfg)
        return pipe.configure(
            image_to=mq.image_to, t2i_template=mq.t2i_template, edit_template=mq.edit_template
        )
    if name == UniPicKontextPipeline.__name__:
        return UniPicMetaQueryPipeline.from_kontext(
            UniPicKontextPipeline.from_pretrained(init_dir), mq, store=store_cfg
        )
    raise ConfigError(
        f"{init_dir} holds a {name}; metaquery.train.init_from needs a UniPicKontextPipeline or "
        "UniPicMetaQueryPipeline folder"
    )


class MetaQueryTrainer(Trainer):
    section = "metaquery.train"

    def __init__(
        self,
        mq: MetaQueryConfig,
        work_dir: Path,
        *,
        store_cfg: Any = None,
        ctx: ParallelContext | None = None,
        pipe: Any = None,
    ) -> None:
        cfg = mq.train
        work_dir = Path(work_dir)
        ctx = ctx or init_parallel(cfg.deepspeed)
        cache = work_dir / "cache"
        self.mq = mq
        self.init_dir = None
        if pipe is None:
            self.init_dir = resolve_input(
                cfg.init_from,
                "Kontext or MetaQuery model folder",
                "metaquery.train.init_from",
                store_cfg,
                cache / "models",
            )
            pipe = load_start_pipeline(self.init_dir, mq, store_cfg)
            pipe.to(resolve_device(cfg.device, ctx.local_rank, key="metaquery.train.device"))
        self.pipe = pipe
        self.dataset_dir = resolve_input(
            cfg.dataset, "dataset", "metaquery.train.dataset", store_cfg, cache / "data"
        )
        self.edit_ratio = cfg.edit_share()
        if cfg.stage == 1 and self.edit_ratio > 0:
            raise ConfigError(
                "metaquery.train.stage=1 aligns on text-to-image only: set metaquery.train.edit_ratio=0 "
                "(or null), or use stage=2 for editing"
            )
        pipe.vae.requires_grad_(False)
        pipe.mllm.requires_grad_(False).eval()
        pipe.connector.requires_grad_(cfg.train_connector)
        pipe.transformer.requires_grad_(cfg.dit_trainable())
        if not (cfg.train_connector or cfg.dit_trainable()):
            raise ConfigError(
                "metaquery.train.train_connector=false and train_dit=false: nothing would train"
            )
        self.patch = pipe.transformer.config.patch_size
        data, self.dataset_info = build_joint_batches(
            self.dataset_dir,
            batch_size=cfg.batch_size,
            edit_ratio=self.edit_ratio,
            seed=cfg.seed,
            split=cfg.split,
            rank=ctx.rank,
            world_size=ctx.world_size,
            task_weights=cfg.task_weights,
        )
        self._sample_edits: list[tuple[Any, str, Any]] | None = None
        super().__init__(cfg, MetaQueryTrainable(pipe), data, work_dir, ctx=ctx, store_cfg=store_cfg)
        self.cfg: MetaQueryTrainConfig = cfg
        n_train = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        log.info(
            "metaquery stage %d: training %.2fM parameters (connector %s, DiT %s), MLLM frozen, image_to=%s",
            cfg.stage,
            n_train / 1e6,
            cfg.train_connector,
            cfg.dit_trainable(),
            mq.image_to,
        )

    # ----- one step -----------------------------------------------------------------------------

    def batch_inputs(self, batch: T2IBatch | EditBatch, drop: torch.Tensor):
        """-> (x0, ref_latents | None, texts, mllm_images, editing)."""
        route = self.mq.image_to
        if isinstance(batch, T2IBatch):
            texts = ["" if d else t for t, d in zip(batch.captions, drop.tolist(), strict=True)]
            return (
                self.pipe.encode_image(batch.images),
                None,
                texts,
                [None] * len(texts),
                [False] * len(texts),
            )
        texts = ["" if d else t for t, d in zip(batch.instructions, drop.tolist(), strict=True)]
        ref = self.pipe.encode_image(batch.sources) if image_to_dit(route) else None
        images = to_pil(batch.sources) if image_to_mllm(route) else [None] * len(texts)
        return self.pipe.encode_image(batch.targets), ref, texts, images, [True] * len(texts)

    def forward_backward_step(self, batch: T2IBatch | EditBatch) -> StepOutput:
        from unipic.diffusion import add_noise, sample_sigmas, sigma_to_timestep, velocity_target

        cfg, g = self.cfg, self.generator
        n = len(batch)
        drop = torch.rand(n, generator=g) < cfg.caption_dropout
        with torch.no_grad():
            x0, ref, texts, images, editing = self.batch_inputs(batch, drop)
        x0 = x0.float()
        ts = cfg.timesteps
        sigmas = sample_sigmas(
            n,
            ts.weighting,
            logit_mean=ts.logit_mean,
            logit_std=ts.logit_std,
            mode_scale=ts.mode_scale,
            shift=ts.shift,
            generator=g,
        )
        noise = torch.randn(x0.shape, generator=g, dtype=x0.dtype).to(x0.device)
        sigmas = sigmas.to(x0.device)
        x_t = add_noise(x0, noise, sigmas)
        target = velocity_target(x0, noise)
        with self.autocast():
            pred = self.forward_model(x_t, sigma_to_timestep(sigmas), texts, images, editing, ref)
        loss = F.mse_loss(pred.float(), target)
        self.backward(loss)
        grid = (x0.shape[-2] // self.patch) * (x0.shape[-1] // self.patch)
        tokens = n * grid * (2 if ref is not None else 1)
        return StepOutput(
            loss=loss.detach(), metrics={f"loss_{batch.kind}": float(loss.detach())}, tokens=tokens, samples=n
        )

    # ----- samples ------------------------------------------------------------------------------

    def _edit_examples(self, k: int = 4) -> list[tuple[Any, str, Any]]:
        """The first k edit triplets of the first edit shard, for the sample grid."""
        if self._sample_edits is None:
            from PIL import Image

            self._sample_edits = []
            rows = DatasetIndex(self.dataset_dir, "all").rows("edit")
            if len(rows):
                shard = sorted(rows["shard"].unique())[0]
                members = read_shard(self.dataset_dir / shard)
                sub = rows[rows["shard"] == shard].sort_values("sample_id").head(k)
                for sid, text in zip(sub["sample_id"], sub["text"], strict=True):
                    m = members.get(str(sid), {})
                    if "src.png" in m and "tgt.png" in m:
                        self._sample_edits.append(
                            (
                                Image.open(io.BytesIO(m["src.png"])).convert("RGB"),
                                str(text),
                                Image.open(io.BytesIO(m["tgt.png"])).convert("RGB"),
                            )
                        )
        return self._sample_edits

    @torch.no_grad()
    def sample_images(self) -> dict[str, list[Any]] | None:
        cfg = self.cfg
        out: dict[str, list[Any]] = {}
        with self.autocast():
            if cfg.sample_prompts:
                gens = [torch.Generator().manual_seed(1000 + i) for i in range(len(cfg.sample_prompts))]
                out["t2i"] = self.pipe(
                    list(cfg.sample_prompts),
                    num_inference_steps=cfg.sample_steps,
                    guidance_scale=cfg.sample_guidance,
                    generator=gens,
                ).images
            edits = self._edit_examples() if self.edit_ratio > 0 else []
            if edits:
                gens = [torch.Generator().manual_seed(2000 + i) for i in range(len(edits))]
                srcs = [e[0] for e in edits]
                outs = self.pipe(
                    [e[1] for e in edits],
                    image=srcs,
                    num_inference_steps=cfg.sample_steps,
                    guidance_scale=cfg.sample_guidance,
                    generator=gens,
                ).images
                out["edit src"], out["edit out"], out["edit tgt"] = srcs, outs, [e[2] for e in edits]
        return out or None

    # ----- export -------------------------------------------------------------------------------

    def lineage(self) -> Lineage:
        return Lineage(
            stage=f"metaquery-stage{self.cfg.stage}",
            config_hash=config_hash(self.mq),
            dataset_uri=self.cfg.dataset,
            dataset_rev=self.cfg.dataset_rev,
            dataset_hash=self.dataset_info.total_sha256,
            parent_model=self.cfg.init_from or None,
        )

    def checkpoint_metadata(self) -> dict[str, Any]:
        return {
            "stage": f"metaquery-stage{self.cfg.stage}",
            "config_hash": config_hash(self.mq),
            "dataset_hash": self.dataset_info.total_sha256,
        }

    def export(self, output: str | Path, result: TrainResult | None = None) -> str:
        """The MetaQuery model folder (EMA weights, MLLM as a reference when it came from a folder/URI, lineage),
        written to a temp folder and renamed, or published with a manifest for s3://. Only rank 0 writes."""
        lineage = self.lineage()
        out = str(output)
        with self.ema_weights():
            if not self.ctx.is_main:
                return out
            record = {
                "kind": "metaquery",
                "metaquery_stage": self.cfg.stage,
                "steps": self.step,
                "image_to": self.mq.image_to,
                "train_connector": self.cfg.train_connector,
                "train_dit": self.cfg.dit_trainable(),
                "final_loss": (result.losses.get(result.last_step) if result else None),
                "exported_weights": "ema" if self.ema else "live",
            }
            was = self.model.training
            self.model.eval()
            try:
                export_pipeline(self.pipe, out, lineage=lineage, record=record, work_dir=self.work_dir,
                                store_cfg=self.store_cfg)
            finally:
                self.model.train(was)
        log.info("exported the MetaQuery model to %s", out)
        return out


@dataclass
class MetaQueryResult:
    model: str
    lineage: Lineage
    train: TrainResult
    work_dir: Path


def run_metaquery(
    mq: MetaQueryConfig, work_dir: str | Path, *, store_cfg: Any = None, resume: bool | Path = False
) -> MetaQueryResult:
    """The stage: start from `mq.train.init_from`, train on `mq.train.dataset`, export to `mq.train.output`
    (or work_dir/model)."""
    work_dir = Path(work_dir)
    trainer = MetaQueryTrainer(mq, work_dir, store_cfg=store_cfg)
    if trainer.ctx.is_main:
        work_dir.mkdir(parents=True, exist_ok=True)
        (work_dir / "config.json").write_text(
            json.dumps(
                {"config_hash": config_hash(mq), "metaquery": json.loads(mq.model_dump_json())}, indent=2
            )
        )
    result = trainer.train(resume=resume)
    model = trainer.export(mq.train.output or str(work_dir / "model"), result)
    return MetaQueryResult(model=model, lineage=trainer.lineage(), train=result, work_dir=work_dir)
