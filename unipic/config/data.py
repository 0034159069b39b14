"""ShapesWorld generation: the synthetic world every stage can be checked against on a CPU."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from unipic.config.base import Section

T2ITask = Literal["single_object", "two_object", "counting", "colors", "position", "color_attr"]
EditCategory = Literal["recolor", "add", "remove", "replace", "move", "resize", "background"]
T2I_TASKS: tuple[str, ...] = T2ITask.__args__  # type: ignore[attr-defined]
EDIT_CATEGORIES: tuple[str, ...] = EditCategory.__args__  # type: ignore[attr-defined]


class ShapesConfig(Section):
    image_size: int = Field(default=32, ge=16, le=1024, description="square canvas side in pixels")
    n_t2i: int = Field(default=512, ge=0)
    n_edit: int = Field(default=512, ge=0)
    seed: int = 0
    shard_size: int = Field(default=256, ge=1, description="samples per WebDataset tar shard")
    t2i_tasks: list[T2ITask] = Field(default_factory=lambda: list(T2I_TASKS))
    edit_categories: list[EditCategory] = Field(default_factory=lambda: list(EDIT_CATEGORIES))
    heldout: bool = Field(
        default=False,
        description="generate only compositions of the held-out split (for evaluation), else only train ones",
    )
