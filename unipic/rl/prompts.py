"""RL prompts from the curated dataset: captions (stage 2) or instruction + source image pairs (stage 1).

RL needs few distinct conditions (Flow-GRPO trains on a prompt set, not a stream of images), so up to
`max_prompts` are loaded once into memory with their ground truth, and `PromptSource` deals them out
`prompts_per_round` at a time, reshuffled every epoch from (seed, epoch). Its position is two integers, so a
checkpoint restores it exactly.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from unipic.errors import DataError
from unipic.rl.rollout import Condition


def load_conditions(root: str | Path, kind: str, *, split: str = "train", max_prompts: int = 64,
                    tasks: list[str] | None = None, seed: int = 0) -> list[Condition]:
    """Up to `max_prompts` conditions of `kind` ("t2i" | "edit") from a dataset directory, drawn evenly over
    its rows (seeded) so that every task is represented."""
    from unipic.training.data import DatasetIndex, read_shard

    index = DatasetIndex(Path(root), split=split)
    rows = index.rows(kind)
    if tasks and "task" in rows.columns:
        rows = rows[rows["task"].isin(tasks)]
    if len(rows) == 0:
        raise DataError(f"the dataset at {root} has no '{kind}' samples in split '{split}'"
                        + (f" for tasks {tasks}" if tasks else "") + "; check rl.<stage>.tasks and split")
    rng = np.random.default_rng([seed, 7])
    pick = rows.iloc[np.sort(rng.permutation(len(rows))[:max_prompts])]
    out: list[Condition] = []
    for shard, part in pick.groupby("shard", sort=True):
        members = read_shard(Path(root) / str(shard))
        for sid, text in zip(part["sample_id"], part["text"]):
            m = members.get(str(sid))
            if m is None:
                raise DataError(f"sample {sid} is in index.parquet but not in {shard}; regenerate the dataset")
            meta: dict[str, Any] = json.loads(m["json"]) if "json" in m else {}
            meta["sample_id"] = str(sid)
            if kind == "edit":
                if "src.png" not in m:
                    raise DataError(f"edit sample {sid} has no source image (src.png) in {shard}")
                with Image.open(io.BytesIO(m["src.png"])) as im:
                    source = im.convert("RGB")
                out.append(Condition(prompt=str(text), source=source, meta=meta, key=(str(text), str(sid))))
            else:
                out.append(Condition(prompt=str(text), meta=meta, key=str(text)))
    return out


class PromptSource:
    """Stateful iterator of rounds: `next()` -> `per_round` distinct conditions."""

    def __init__(self, conditions: list[Condition], per_round: int, seed: int = 0):
        if len(conditions) < per_round:
            raise DataError(f"{len(conditions)} prompts but prompts_per_round={per_round}; lower "
                            "rl.<stage>.prompts_per_round or raise rl.<stage>.max_prompts")
        self.conditions = conditions
        self.per_round = per_round
        self.seed = seed
        self.epoch = 0
        self.pos = 0

    def _order(self) -> np.ndarray:
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.conditions))

    def __iter__(self) -> PromptSource:
        return self

    def __next__(self) -> list[Condition]:
        if self.pos + self.per_round > len(self.conditions):
            self.epoch += 1
            self.pos = 0
        order = self._order()
        batch = [self.conditions[i] for i in order[self.pos:self.pos + self.per_round]]
        self.pos += self.per_round
        return batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
