"""The root config: one typed tree, one section per stage. Stages receive their section, never a global."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from unipic.config.base import Section, apply_overrides, read_preset, validate_config
from unipic.config.cluster import ClusterConfig
from unipic.config.curation import CurationConfig, FeaturesConfig, RegistryConfig
from unipic.config.data import ShapesConfig
from unipic.config.model import ModelConfig
from unipic.config.evaluation import EvaluationConfig
from unipic.config.metaquery import MetaQueryConfig
from unipic.config.rl import RLConfig
from unipic.config.serve import ServeConfig
from unipic.config.store import ServicesConfig, StoreConfig
from unipic.config.train import PretrainConfig


class RunConfig(Section):
    name: str = "unipic"
    workdir: Path = Field(default=Path(".unipic/runs"), description="local root for run outputs")
    seed: int = 0


class UniPicConfig(Section):
    preset: str = "ci"
    run: RunConfig = Field(default_factory=RunConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    services: ServicesConfig = Field(default_factory=ServicesConfig)
    shapes: ShapesConfig = Field(default_factory=ShapesConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    curation: CurationConfig = Field(default_factory=CurationConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    metaquery: MetaQueryConfig = Field(default_factory=MetaQueryConfig)
    rl: RLConfig = Field(default_factory=RLConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)


def load_config(preset: str | Path = "ci", overrides: list[str] | None = None) -> UniPicConfig:
    """Load a preset (name or YAML path), apply `key.path=value` overrides, validate strictly."""
    data = read_preset(preset)
    data.setdefault("preset", Path(str(preset)).stem)
    data = apply_overrides(data, overrides or [])
    return validate_config(UniPicConfig, data)
