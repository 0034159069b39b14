"""UniPic2-MetaQuery: a frozen Qwen2.5-VL with learnable queries and a connector feeding the Kontext DiT.

Defaults are the CPU ("ci") sizes; `configs/base.yaml` sets the paper's (notes/unipic2.md §4:
Qwen2.5-VL-7B, 256 queries, a 24-layer 1536-wide connector).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from unipic.config.base import Section
from unipic.config.train import TASK_WEIGHTS_HELP, TaskWeights, TimestepConfig, TrainerConfig

ImageRoute = Literal["both", "mllm", "dit", "none"]


class MLLMConfig(Section):
    """The frozen multimodal LLM. `pretrained` empty → a tiny random Qwen2.5-VL built from the fields below."""

    pretrained: str | None = Field(
        default=None,
        description="folder or s3:// URI of a Hugging Face Qwen2.5-VL folder (e.g. Qwen2.5-VL-7B-Instruct)",
    )
    hidden_size: int = Field(default=64, ge=8)
    intermediate_size: int = Field(default=128, ge=8)
    num_hidden_layers: int = Field(default=2, ge=1)
    num_attention_heads: int = Field(default=4, ge=1)
    num_key_value_heads: int = Field(default=2, ge=1)
    vision_depth: int = Field(default=2, ge=1)
    vision_hidden_size: int = Field(default=32, ge=8)
    vision_intermediate_size: int = Field(default=64, ge=8)
    vision_num_heads: int = Field(default=2, ge=1)
    image_size: int | None = Field(
        default=56,
        description="side in px the MLLM sees (multiple of 28); null = UniPic2's rule, each side x 28/32",
    )
    system_prompt: str = Field(default="", description="'' drops Qwen's default system turn, as UniPic2 does")
    learn_merges: bool = Field(
        default=True, description="tiny tokenizer: learn BPE merges on ShapesWorld words"
    )
    dtype: Literal["float32", "bfloat16"] = "float32"
    seed: int = 0

    @model_validator(mode="after")
    def _heads_divide(self) -> MLLMConfig:
        if self.pretrained is None:
            if self.hidden_size % self.num_attention_heads:
                raise ValueError("hidden_size must be divisible by num_attention_heads")
            head_dim = self.hidden_size // self.num_attention_heads
            if head_dim % 2 or head_dim // 2 < 3:
                raise ValueError(
                    "hidden_size / num_attention_heads must be an even number >= 6 (mRoPE sections)"
                )
            if self.num_attention_heads % self.num_key_value_heads:
                raise ValueError("num_attention_heads must be divisible by num_key_value_heads")
        return self


class ConnectorConfig(Section):
    """UniPic2's conditioner: project → bidirectional pre-LN encoder (no positions) → token + pooled heads."""

    width: int = Field(default=64, ge=8, description="connector width (1536 in UniPic2)")
    depth: int = Field(default=2, ge=0, description="encoder layers (24 in UniPic2)")
    num_heads: int = Field(default=4, ge=1)
    mlp_dim: int = Field(default=256, ge=8, description="MLP hidden size (8960 in UniPic2)")
    norm_eps: float = 1e-6

    @model_validator(mode="after")
    def _heads_divide(self) -> ConnectorConfig:
        if self.width % self.num_heads:
            raise ValueError(f"width {self.width} must be divisible by num_heads {self.num_heads}")
        return self


class MetaQueryTrainConfig(TrainerConfig):
    """Two stages (notes/unipic2.md §4): 1 aligns queries+connector on T2I with MLLM and DiT frozen;
    2 trains queries+connector+DiT on T2I and editing, MLLM frozen. Loop, optimizer, precision, EMA,
    checkpoints and DeepSpeed come from the shared `TrainerConfig`."""

    stage: Literal[1, 2] = 2
    dataset: str = Field(
        default="", description="dataset dir or s3:// prefix (shards + index.parquet + manifest)"
    )
    dataset_rev: str | None = Field(
        default=None, description="DVC revision of the dataset, recorded in lineage"
    )
    init_from: str = Field(
        default="",
        description="a Kontext pipeline folder/URI (new connector) or a MetaQuery model folder (continue, e.g. stage 1)",
    )
    output: str = Field(
        default="", description="where the trained MetaQuery model folder goes (dir or s3:// URI)"
    )
    edit_ratio: float | None = Field(
        default=None, ge=0, le=1, description="share of editing batches; null = 0 in stage 1, 0.5 in stage 2"
    )
    task_weights: TaskWeights = Field(default_factory=dict, description=TASK_WEIGHTS_HELP)
    caption_dropout: float = Field(default=0.1, ge=0, lt=1, description="share of empty prompts, for CFG")
    train_connector: bool = Field(default=True, description="Table 3 ablation switch (queries + connector)")
    train_dit: bool | None = Field(default=None, description="null = stage 2 only (Table 3 ablation switch)")
    timesteps: TimestepConfig = Field(default_factory=TimestepConfig)
    sample_prompts: list[str] = Field(
        default_factory=lambda: ["a red circle", "a blue square", "a green triangle", "a yellow circle"],
        description="prompts of the T2I sample grid",
    )
    sample_steps: int = Field(default=20, ge=1)
    sample_guidance: float = Field(default=4.0, ge=1.0)
    split: Literal["train", "heldout", "all"] = "train"

    def dit_trainable(self) -> bool:
        return self.stage == 2 if self.train_dit is None else self.train_dit

    def edit_share(self) -> float:
        return (0.0 if self.stage == 1 else 0.5) if self.edit_ratio is None else self.edit_ratio


class MetaQueryConfig(Section):
    mllm: MLLMConfig = Field(default_factory=MLLMConfig)
    num_queries: int = Field(default=16, ge=1, description="learnable query tokens (256 in UniPic2)")
    connector: ConnectorConfig = Field(default_factory=ConnectorConfig)
    image_to: ImageRoute = Field(
        default="both",
        description="editing: where the source image goes (Table 2 ablation): both|mllm|dit|none",
    )
    t2i_template: str = Field(
        default="Generate an image: {prompt}", description="UniPic2 scripts' T2I prompt"
    )
    edit_template: str = Field(default="{prompt}", description="instruction as given, next to the image")
    guidance_scale: float = Field(default=3.5, ge=1.0)
    num_inference_steps: int = Field(default=20, ge=1)
    max_new_tokens: int = Field(default=32, ge=1, description="understanding: answer length")
    train: MetaQueryTrainConfig = Field(default_factory=MetaQueryTrainConfig)
