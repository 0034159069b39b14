"""Data curation (issue #3): filter thresholds, the Great Expectations gate, the Feast feature store and the
DVC data registry. Thresholds have defaults and per-task overrides, resolved with `thresholds_for(task)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from unipic.config.base import Section


class Thresholds(Section):
    """Every accept/reject limit a filter applies. `None` disables a limit."""

    allowed_modes: list[str] = Field(default_factory=lambda: ["RGB"], description="PIL modes accepted as-is")
    max_bytes: int = Field(default=20_000_000, ge=1, description="encoded size above which to reject")
    min_side: int = Field(default=16, ge=1)
    max_side: int = Field(default=4096, ge=1)
    max_aspect: float = Field(default=3.0, ge=1.0, description="long side / short side")
    text_min_chars: int = Field(default=1, ge=0)
    text_max_chars: int = Field(default=300, ge=1)
    text_max_words: int = Field(default=77, ge=1, description="CLIP/T5 prompt budget in words")
    text_min_alpha_ratio: float = Field(default=0.5, ge=0, le=1, description="letters / non-space characters")
    min_sharpness: float | None = Field(default=None, description="Laplacian variance, pixel units 0-255")
    min_colourfulness: float | None = Field(default=None, description="Hasler-Suesstrunk M, 0 for greyscale")
    min_exposure: float | None = Field(default=0.03, ge=0, le=1, description="mean luminance in [0, 1]")
    max_exposure: float | None = Field(default=0.99, ge=0, le=1)
    max_clipped_fraction: float | None = Field(default=None, ge=0, le=1, description="pixels at 0 or 255")
    min_agreement: float | None = Field(default=None, ge=0, le=1, description="text-image agreement score")
    edit_min_change: float = Field(default=0.002, ge=0, le=1, description="below: a no-op edit")
    edit_max_change: float = Field(default=0.9, ge=0, le=1, description="above: the edit changed everything")
    edit_pixel_delta: int = Field(default=24, ge=0, le=255, description="max channel difference that counts")


class ThresholdOverrides(Section):
    """The same keys as `Thresholds`, all optional: only what a task changes."""

    allowed_modes: list[str] | None = None
    max_bytes: int | None = None
    min_side: int | None = None
    max_side: int | None = None
    max_aspect: float | None = None
    text_min_chars: int | None = None
    text_max_chars: int | None = None
    text_max_words: int | None = None
    text_min_alpha_ratio: float | None = None
    min_sharpness: float | None = None
    min_colourfulness: float | None = None
    min_exposure: float | None = None
    max_exposure: float | None = None
    max_clipped_fraction: float | None = None
    min_agreement: float | None = None
    edit_min_change: float | None = None
    edit_max_change: float | None = None
    edit_pixel_delta: int | None = None


class DedupConfig(Section):
    exact: bool = True
    near: bool = True
    phash_size: int = Field(default=8, ge=4, le=16, description="hash side; bits per channel = side^2")
    channels: Literal["luma", "rgb"] = Field(
        default="rgb", description="rgb hashes each channel so a red and a blue circle are not duplicates"
    )
    max_hamming: int = Field(default=10, ge=0, description="bits of difference that still count as duplicate")


class ScorerConfig(Section):
    kind: Literal["shapes_detector", "clip", "none"] = "shapes_detector"
    clip_path: str | None = Field(default=None, description="local dir or s3:// of a CLIP model (kind=clip)")
    clip_logit_scale: float = Field(default=0.05, gt=0, description="cosine -> [0,1] via sigmoid((cos-b)/s)")
    clip_bias: float = 0.2


class GateConfig(Section):
    """The Great Expectations gate on the curated index."""

    enabled: bool = True
    suite: Path = Field(default=Path("data/expectations/curated_index.yaml"), description="suite definition")
    min_rows: int = Field(default=1, ge=0)
    min_task_fraction: float = Field(default=0.0, ge=0, le=1, description="each present task's share, lower")
    max_task_fraction: float = Field(default=1.0, ge=0, le=1)
    required_tasks: list[str] = Field(default_factory=list, description="tasks that must appear at all")


class FeaturesConfig(Section):
    """Feast: per-sample curation signals, keyed by sample_id."""

    enabled: bool = True
    project: str = "unipic"
    repo_path: Path = Field(default=Path("data/feature_repo"), description="feature_store.yaml + definitions")
    state_dir: Path = Field(default=Path(".unipic/features"), description="registry, offline parquet, sqlite")
    offline: Literal["file", "s3"] = "file"
    offline_uri: str | None = Field(default=None, description="s3://bucket/prefix (offline=s3)")
    online: Literal["sqlite", "redis"] = "sqlite"
    redis_connection: str = "redis:6379"
    ttl_days: int = Field(default=3650, ge=1, description="older signals: invisible to retrieval")
    selection: dict[str, list[float | None]] = Field(
        default_factory=dict,
        description="training-set selection: feature -> [min, max] (null = open), applied after retrieval",
    )

    @model_validator(mode="after")
    def _selection_pairs(self) -> FeaturesConfig:
        for name, bounds in self.selection.items():
            if len(bounds) != 2:
                raise ValueError(f"selection.{name} must be [min, max] (null: open end), got {bounds}")
        if self.offline == "s3" and not self.offline_uri:
            raise ValueError("offline=s3 needs offline_uri (s3://bucket/prefix for the signal parquet)")
        return self


class RegistryConfig(Section):
    """The DVC data registry: a git repo (never this project's) whose remote is the object store."""

    enabled: bool = True
    path: Path = Field(default=Path(".unipic/registry"), description="local clone of the data registry")
    git_remote: str | None = Field(default=None, description="git URL to clone/push; None: local")
    remote_prefix: str = Field(default="store", description="key prefix inside store.buckets.dvc")
    dataset_dir: str = Field(default="datasets/curated", description="dataset folder in the repo")
    tag_prefix: str = "curated-v"


class CurationConfig(Section):
    thresholds: Thresholds = Field(default_factory=Thresholds)
    per_task: dict[str, ThresholdOverrides] = Field(default_factory=dict, description="task -> overrides")
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    scorer: ScorerConfig = Field(default_factory=ScorerConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    shard_size: int = Field(default=256, ge=1)
    batch_size: int = Field(default=64, ge=1, description="samples per filter batch (vectorised signals, "
                            "hashes, detector); 1 = one sample at a time, same results")
    card_samples: int = Field(default=32, ge=0, description="images in the dataset card's grid")
    output_prefix: str = Field(default="curated", description="key prefix under store.buckets.data")

    @model_validator(mode="after")
    def _limits_ordered(self) -> CurationConfig:
        for task in [None, *self.per_task]:
            t = self.thresholds_for(task)
            if t.min_side > t.max_side:
                raise ValueError(f"{task or 'thresholds'}: min_side {t.min_side} > max_side {t.max_side}")
            if t.edit_min_change > t.edit_max_change:
                raise ValueError(f"{task or 'thresholds'}: edit_min_change > edit_max_change")
        return self

    def thresholds_for(self, task: str | None) -> Thresholds:
        """Defaults with the task's overrides applied (unknown tasks get the defaults)."""
        over = self.per_task.get(task or "")
        if over is None:
            return self.thresholds
        return self.thresholds.model_copy(update=over.model_dump(exclude_none=True))
