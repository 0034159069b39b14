"""ShapesWorld generation: the synthetic world every stage can be checked against on a CPU."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from unipic.config.base import Section

T2ITask = Literal["single_object", "two_object", "counting", "colors", "position", "color_attr"]
EditCategory = Literal["recolor", "add", "remove", "replace", "move", "resize", "background"]
T2I_TASKS: tuple[str, ...] = T2ITask.__args__  # type: ignore[attr-defined]
EDIT_CATEGORIES: tuple[str, ...] = EditCategory.__args__  # type: ignore[attr-defined]

ColorChoice = Literal["red", "green", "blue", "yellow", "purple", "orange"]
ShapeChoice = Literal["circle", "square", "triangle"]
SizeChoice = Literal["small", "medium", "large"]
BackgroundChoice = Literal["white", "black", "gray"]


class ShapesConfig(Section):
    image_size: int = Field(default=32, ge=16, le=1024, description="square canvas side in pixels")
    n_t2i: int = Field(default=512, ge=0)
    n_edit: int = Field(default=512, ge=0)
    seed: int = 0
    shard_size: int = Field(default=256, ge=1, description="samples per WebDataset tar shard")
    t2i_tasks: list[T2ITask] = Field(default_factory=lambda: list(T2I_TASKS), min_length=1)
    edit_categories: list[EditCategory] = Field(default_factory=lambda: list(EDIT_CATEGORIES), min_length=1)
    heldout: bool = Field(
        default=False,
        description="generate only compositions of the held-out split (for evaluation), else only train ones",
    )
    colors: list[ColorChoice] = Field(
        default_factory=lambda: ["red", "green", "blue", "yellow", "purple", "orange"], min_length=2,
        description="object colours in use (the detector always knows the whole palette)",
    )
    shapes: list[ShapeChoice] = Field(default_factory=lambda: ["circle", "square", "triangle"], min_length=2)
    sizes: list[SizeChoice] = Field(
        default_factory=lambda: ["small", "medium", "large"], min_length=1,
        description="size classes in use; resize edits need at least two",
    )
    background: BackgroundChoice = Field(default="white", description="background of T2I images and edit sources")
    max_count: int = Field(default=4, ge=2, le=6, description="counting prompts use 2..max_count objects")
    max_edit_objects: int = Field(default=3, ge=1, le=5, description="edit sources hold 1..this many objects")
    heldout_fraction: float = Field(
        default=0.15, ge=0.0, le=0.9,
        description="share of multi-object compositions (pairs, relations, counts, edits) held out by hash",
    )

    @field_validator("colors", "shapes", "sizes", "t2i_tasks", "edit_categories")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"values must be unique, got {v}")
        return v
