"""Training sections: a shared `TrainerConfig` every trainer extends, and `PretrainConfig` for issue #4.

Defaults follow the paper's pre-training recipe (notes/unipic2.md §2: AdamW betas 0.9/0.95, eps 1e-8,
weight decay 0.05, cosine schedule) except where the CPU study found better values for tiny models
(notes/shapesworld_learnability.md §3: lr 5e-4, betas 0.9/0.99, EMA 0.995, batch 64); presets set those.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeFloat, model_validator

from unipic.config.base import Section


class DeepSpeedConfig(Section):
    """DeepSpeed ZeRO behind a flag. Plain single-process training is the default (notes/feas_ml.md §6, §8)."""

    enabled: bool = False
    zero_stage: int = Field(default=2, ge=0, le=3, description="ZeRO stage 0-3")
    backend: Literal["gloo", "nccl"] = Field(default="gloo", description="gloo on CPU, nccl on GPUs")
    master_addr: str = "127.0.0.1"
    master_port: int = Field(default=29511, ge=1024, le=65535, description="used when no launcher set MASTER_PORT")
    overlap_comm: bool = False
    contiguous_gradients: bool = True
    offload_optimizer: bool = Field(default=False, description="ZeRO-Offload of optimizer states to CPU (GPU runs)")


class TrainerConfig(Section):
    """What every trainer shares: loop, optimizer, schedule, precision, EMA, checkpoints, metrics."""

    steps: int = Field(default=100, ge=1, description="optimizer steps to run in total")
    batch_size: int = Field(default=8, ge=1, description="samples per optimizer step per process")
    lr: float = Field(default=4e-5, gt=0, description="peak learning rate (paper: 4e-5 at batch 128)")
    betas: tuple[float, float] = Field(default=(0.9, 0.95), description="AdamW betas (paper: 0.9, 0.95)")
    eps: float = Field(default=1e-8, gt=0)
    weight_decay: float = Field(default=0.05, ge=0, description="AdamW weight decay (paper: 0.05)")
    warmup_steps: int = Field(default=0, ge=0)
    schedule: Literal["cosine", "constant", "linear", "wsd"] = "cosine"
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1, description="final lr as a fraction of lr (cosine/linear/wsd)")
    decay_fraction: float = Field(
        default=0.2, gt=0, le=1, description="wsd: the last fraction of the steps, decayed linearly to min_lr_ratio"
    )
    grad_clip: float = Field(default=1.0, ge=0, description="max global grad norm; 0 disables clipping")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto",
        description="bf16 = torch.autocast(bfloat16) over fp32 weights; auto = bf16 where the device multiplies bf16 "
        "natively (GPU, CPU with AMX / AVX512-BF16), else fp32 (emulated bf16 is ~30x slower on an AVX2 CPU)",
    )
    fused_adamw: bool = Field(default=True, description="AdamW(fused=True): 3x faster optimizer step on CPU")
    ema_decay: float = Field(default=0.995, ge=0, lt=1, description="0 disables EMA")
    ema_every: int = Field(default=1, ge=1, description="update EMA weights every k steps")
    ema_warmup: bool = Field(
        default=False, description="ramp the decay as min(decay, (1+n)/(10+n)) (diffusers EMAModel); pretrain: on"
    )
    gradient_checkpointing: bool = False
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="auto: this process's GPU when CUDA is available, else the CPU"
    )
    seed: int = 0
    threads: int = Field(default=0, ge=0, description="torch intra-op threads; 0 keeps torch's default")
    checkpoint_every: int = Field(default=0, ge=0, description="steps between checkpoints; 0 = only at the end")
    keep_last: int = Field(default=2, ge=1, description="complete checkpoints to keep")
    checkpoint_uri: str | None = Field(
        default=None, description="s3://bucket/prefix to also publish checkpoints to (with a manifest)"
    )
    log_every: int = Field(default=10, ge=1, description="steps between metric records (JSONL)")
    sample_every: int = Field(default=0, ge=0, description="steps between sample grids; 0 = only at the end")
    max_memory_gb: float | None = Field(
        default=None, gt=0, description="refuse configs whose estimated peak exceeds this; None = 90% of RAM"
    )
    deepspeed: DeepSpeedConfig = Field(default_factory=DeepSpeedConfig)

    @model_validator(mode="after")
    def _check(self) -> TrainerConfig:
        if not (0 <= self.betas[0] < 1 and 0 <= self.betas[1] < 1):
            raise ValueError(f"betas must each be in [0, 1), got {self.betas}")
        if self.warmup_steps > self.steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) exceeds steps ({self.steps})")
        return self


TaskWeights = dict[str, NonNegativeFloat]
TASK_WEIGHTS_HELP = "sampling weight per T2I task / edit category (default 1, 0 drops it), e.g. {recolor: 4}"


class TimestepConfig(Section):
    """SD3 timestep sampling (Esser et al. 2024): t = sigmoid(N(mean, std)), then a resolution shift."""

    weighting: Literal["logit_normal", "uniform", "mode"] = "logit_normal"
    logit_mean: float = 0.0
    logit_std: float = Field(default=1.0, gt=0)
    mode_scale: float = 1.29
    shift: float = Field(default=1.0, gt=0, description="sigma' = s*sigma/(1+(s-1)*sigma); SD3.5 uses 3.0 at 1024 px")
    resolution_shift: bool = Field(
        default=False,
        description="shift by the image token count instead (SD3/FLUX exp(mu) with mu linear in tokens); "
                    "replaces `shift`, so larger images train at higher noise",
    )


class EditPhase(Section):
    """One phase of an editing curriculum: `edit_ratio` of the steps up to `until` x steps are edit batches."""

    until: float = Field(gt=0, le=1, description="end of the phase as a fraction of `steps`")
    edit_ratio: float = Field(ge=0, le=1, description="share of edit batches within the phase")


class PretrainConfig(TrainerConfig):
    """Joint T2I + editing pre-training of the Kontext DiT with flow matching (issue #4)."""

    dataset: str = Field(default="", description="dataset dir or s3:// prefix (shards + index.parquet + manifest)")
    dataset_rev: str | None = Field(default=None, description="DVC revision of the dataset, recorded in lineage")
    base_model: str = Field(default="", description="bootstrapped base pipeline folder or s3:// URI")
    output: str = Field(default="", description="where the trained pipeline folder goes (dir or s3:// URI)")
    ema_warmup: bool = Field(
        default=True, description="short pre-training runs would otherwise export mostly the initial weights"
    )
    edit_ratio: float = Field(
        default=0.5, ge=0, le=1, description="fraction of steps that are editing batches (paper: alternating = 0.5)"
    )
    edit_phases: list[EditPhase] = Field(
        default_factory=list,
        description="a curriculum that replaces edit_ratio: e.g. [{until: 0.6, edit_ratio: 0.1}, "
                    "{until: 1.0, edit_ratio: 0.8}] draws first, then edits (the last phase must end at 1.0)",
    )
    edit_batch_size: int | None = Field(
        default=None, ge=1,
        description="samples per edit batch; None = batch_size. An edit sample carries the reference's tokens too, "
                    "so batch_size / 2 costs about what a T2I batch does",
    )
    task_weights: TaskWeights = Field(default_factory=dict, description=TASK_WEIGHTS_HELP)
    caption_dropout: float = Field(default=0.1, ge=0, lt=1, description="share of empty prompts, for CFG")
    timesteps: TimestepConfig = Field(default_factory=TimestepConfig)
    cache_latents: bool = Field(
        default=False, description="precompute image latents + text embeddings once per dataset + model"
    )
    sample_prompts: list[str] = Field(
        default_factory=lambda: ["a red circle", "a blue square", "a green triangle", "a yellow circle"],
        description="prompts of the T2I sample grid",
    )
    sample_edits: int = Field(default=4, ge=0, description="edit triplets from the dataset in the sample grid")
    sample_steps: int = Field(default=20, ge=1)
    sample_guidance: float = Field(default=4.0, ge=1.0)
    split: Literal["train", "heldout", "all"] = "train"

    @model_validator(mode="after")
    def _check_phases(self) -> PretrainConfig:
        ends = [p.until for p in self.edit_phases]
        if ends and (ends != sorted(set(ends)) or ends[-1] != 1.0):
            raise ValueError(f"pretrain.edit_phases: 'until' must increase strictly and end at 1.0, got {ends}")
        return self

    def edit_schedule(self) -> float | list[tuple[int, float]]:
        """What the batch interleaver takes: the constant ratio, or (end step, ratio) per phase."""
        if not self.edit_phases:
            return self.edit_ratio
        return [(round(p.until * self.steps), p.edit_ratio) for p in self.edit_phases]

    @property
    def trains_edits(self) -> bool:
        return max([self.edit_ratio] if not self.edit_phases else [p.edit_ratio for p in self.edit_phases]) > 0
