"""PDTR: Flow-GRPO settings for RL stage 1 (editing) and stage 2 (text-to-image).

Defaults are the paper's (arXiv 2509.04548 §4.1) where it states them, else Flow-GRPO's
(`config/base.py`, `config/grpo.py:geneval_sd3`); each field's description says which.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from unipic.config.base import Section
from unipic.config.train import TrainerConfig

RewardName = Literal["shapes_t2i", "shapes_edit", "vlm_judge", "kserve_scorer"]


class LoRAConfig(Section):
    enabled: bool = Field(default=True, description="LoRA through peft; False = full fine-tuning (paper: LoRA)")
    rank: int = Field(default=32, ge=1, description="paper §4.1: r=32")
    alpha: int = Field(default=64, ge=1, description="paper §4.1: alpha=64")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default_factory=lambda: ["attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0",
                                 "attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj", "attn.to_add_out"],
        description="Flow-GRPO SD3: attention projections of both streams, no FFNs",
    )


class HTTPRewardConfig(Section):
    """An HTTP reward endpoint: an OpenAI-compatible VLM judge or a KServe V2 scorer."""

    url: str = Field(default="", description="base URL, e.g. http://127.0.0.1:8000 (empty = not configured)")
    model: str = Field(default="shapesworld-judge", description="model name sent to the server")
    timeout_s: float = Field(default=30.0, gt=0)
    retries: int = Field(default=2, ge=0, le=10, description="retries per request after the first try")
    max_concurrency: int = Field(default=4, ge=1, le=256)
    api_key_env: str = Field(default="UNIPIC_JUDGE_API_KEY", description="env var holding the bearer token")


class RewardConfig(Section):
    weights: dict[RewardName, float] = Field(
        default_factory=lambda: {"shapes_t2i": 1.0},
        description="weighted sum of named rewards; each component is also logged on its own",
    )
    cleanliness_weight: float = Field(
        default=0.5, ge=0.0,
        description="ShapesWorld T2I: weight of the cleanliness penalty (background + object flatness); "
                    "guards against the noise hacking seen in notes/shapesworld_learnability.md §5",
    )
    on_error: Literal["fail", "skip"] = Field(
        default="fail", description="reward server down after retries: fail the step, or skip the round (counted)",
    )
    vlm_judge: HTTPRewardConfig = Field(default_factory=HTTPRewardConfig)
    kserve_scorer: HTTPRewardConfig = Field(default_factory=lambda: HTTPRewardConfig(model="shapesworld-scorer"))


class RLStageConfig(TrainerConfig):
    """One PDTR stage. A trainer step is one RL round: sample G rollouts per prompt, score, update.

    TrainerConfig fields keep their meaning except `steps` (= rounds) and `batch_size` (unused: the round
    size is `prompts_per_round * grpo.group_size`). Optimizer defaults are the paper's (§4.1): lr 3e-4,
    Adam (0.9, 0.999, 1e-8), constant schedule; fp32 because bf16 widens the old/new log-prob mismatch
    (Flow-GRPO README FAQ); EMA off (optional)."""

    steps: int = Field(default=2, ge=1, description="RL rounds (paper: not stated)")
    lr: float = Field(default=3e-4, gt=0, description="paper §4.1: 3e-4")
    betas: tuple[float, float] = Field(default=(0.9, 0.999), description="paper §4.1")
    weight_decay: float = Field(default=1e-4, ge=0, description="Flow-GRPO: 1e-4")
    schedule: Literal["cosine", "constant", "linear"] = "constant"
    precision: Literal["auto", "fp32", "bf16"] = "fp32"
    ema_decay: float = Field(default=0.0, ge=0, lt=1, description="0 = off; Flow-GRPO: 0.9 every 8 steps")
    ema_every: int = Field(default=8, ge=1)
    log_every: int = Field(default=1, ge=1)
    checkpoint_every: int = Field(default=1, ge=0)
    dataset: str = Field(default="", description="curated dataset dir or s3:// prefix: prompts / instructions")
    dataset_rev: str | None = None
    eval_dataset: str = Field(
        default="", description="dataset with held-out prompts for before/after scores (empty = `dataset`)",
    )
    base_model: str = Field(default="", description="the previous stage's pipeline folder or s3:// URI")
    output: str = Field(default="", description="where the merged pipeline goes (dir or s3:// URI)")
    split: Literal["train", "heldout", "all"] = "train"
    prompts_per_round: int = Field(default=2, ge=1, description="distinct prompts (groups) per round")
    max_prompts: int = Field(default=64, ge=1, description="prompts/instructions drawn from the dataset")
    tasks: list[str] = Field(default_factory=list, description="only these T2I tasks / edit categories (empty = all)")
    eval_tasks: list[str] = Field(
        default_factory=list,
        description="T2I tasks and edit categories scored before/after, for both kinds (empty = `tasks` for the "
                    "stage's own kind, all for the other); give both stages the same list so their scores chain",
    )
    reward: RewardConfig = Field(default_factory=RewardConfig)
    eval_prompts: int = Field(default=8, ge=1, description="fixed held-out prompts scored and shown before/after")
    eval_seeds: int = Field(default=2, ge=1, description="seeds per eval prompt")


class EditRewardConfig(RewardConfig):
    """Stage 1's reward: ShapesWorld instruction satisfied x preservation unless the weights say otherwise."""

    weights: dict[RewardName, float] = Field(default_factory=lambda: {"shapes_edit": 1.0})
    cleanliness_weight: float = Field(default=0.0, ge=0.0)


class RLEditStageConfig(RLStageConfig):
    """Stage 1 (editing RL)."""

    reward: EditRewardConfig = Field(default_factory=EditRewardConfig)


class GRPOConfig(Section):
    """Flow-GRPO settings shared by both stages (the paper uses the same ones for both, §4.1)."""

    group_size: int = Field(default=4, ge=2, description="G samples per prompt; paper: 16")
    rollout_batch_size: int = Field(
        default=8, ge=1,
        description="images per sampling forward; also the training minibatch, so that the first minibatch "
                    "has ratio exactly 1. Must be a multiple of group_size.",
    )
    minibatches_per_step: int = Field(
        default=1, ge=1, description="gradient accumulation: minibatches per optimizer step (Flow-GRPO: 2 steps/epoch)",
    )
    num_steps: int = Field(default=10, ge=2, description="SDE steps during RL; paper: 10")
    eval_num_steps: int = Field(default=20, ge=2, description="ODE steps for evaluation; Flow-GRPO: 40")
    noise_level: float = Field(default=0.7, ge=0.0, description="SDE noise level a; paper: 0.7")
    guidance_scale: float = Field(default=4.5, ge=1.0, description="CFG during rollouts; Flow-GRPO: 4.5")
    eval_guidance_scale: float = Field(default=4.5, ge=1.0)
    clip_range: float = Field(default=1e-4, gt=0, description="PPO epsilon on the mean-over-elements ratio")
    adv_clip_max: float = Field(default=5.0, gt=0)
    std_mode: Literal["group", "batch"] = Field(
        default="batch", description="advantage std per group or over the batch (Flow-GRPO SD3: batch)",
    )
    timestep_fraction: float = Field(default=0.99, gt=0, le=1.0, description="Flow-GRPO: 0.99 -> 9 of 10")
    kl_beta: float = Field(default=0.04, ge=0.0, description="paper §4.1: 0.04")
    inner_epochs: int = Field(default=1, ge=1)
    lora: LoRAConfig = Field(default_factory=LoRAConfig)
    max_bad_rounds: int = Field(
        default=3, ge=0, description="rounds in a row skipped for NaN rewards/log-probs or a down reward server "
                                     "before the stage fails",
    )

    @model_validator(mode="after")
    def _group_divides_batch(self) -> "GRPOConfig":
        if self.rollout_batch_size % self.group_size:
            raise ValueError(
                f"rollout_batch_size={self.rollout_batch_size} is not a multiple of group_size={self.group_size}; "
                f"set rl.grpo.rollout_batch_size to a multiple of {self.group_size}"
            )
        return self

    @property
    def num_train_timesteps(self) -> int:
        return max(1, int(self.num_steps * self.timestep_fraction))


class RLConfig(Section):
    grpo: GRPOConfig = Field(default_factory=GRPOConfig)
    edit: RLEditStageConfig = Field(default_factory=RLEditStageConfig)
    t2i: RLStageConfig = Field(default_factory=RLStageConfig)

    @model_validator(mode="after")
    def _check_rounds(self) -> "RLConfig":
        for name in ("edit", "t2i"):
            stage = getattr(self, name)
            images = stage.prompts_per_round * self.grpo.group_size
            per_step = self.grpo.rollout_batch_size * self.grpo.minibatches_per_step
            if images % per_step:
                raise ValueError(
                    f"rl.{name}.prompts_per_round={stage.prompts_per_round} x group_size={self.grpo.group_size} = "
                    f"{images} images per round is not a multiple of rollout_batch_size="
                    f"{self.grpo.rollout_batch_size} x minibatches_per_step={self.grpo.minibatches_per_step}"
                )
        return self
