"""Training batches from a dataset in the project format (shards/*.tar + index.parquet + manifest.json).

Streaming and resumable: each kind (T2I, edit) is a stream over its shards. Every epoch the shard order
is a permutation drawn from (seed, epoch), and the samples inside a shard another one drawn from
(seed, epoch, shard); only the shard being read is in memory. The position is three integers
(epoch, shard cursor, sample cursor), so a checkpoint restores the stream exactly. With several
processes each global batch of batch_size x world_size samples is cut into per-rank slices.

`JointBatches` interleaves the two kinds deterministically from the step number (the paper alternates
generation and editing batches; `edit_ratio` = 0.5 gives exactly that).

`task_weights` re-balances a mix without regenerating data: a sample of a task with weight w appears
floor(w) times per epoch, plus once more with probability frac(w) (drawn from the seed), so 0 drops the
task and 3 triples it. Small CPU budgets spend their edit batches where the model learns slowest.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unipic.errors import DataError
from unipic.logging import get_logger

log = get_logger(__name__)

KIND_IDS = {"t2i": 1, "edit": 2}


@dataclass
class T2IBatch:
    images: torch.Tensor  # (B, 3, H, W) in [-1, 1]
    captions: list[str]
    ids: list[str]
    kind: str = "t2i"
    cached: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class EditBatch:
    sources: torch.Tensor  # (B, 3, H, W) in [-1, 1]
    targets: torch.Tensor
    instructions: list[str]
    ids: list[str]
    kind: str = "edit"
    cached: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class DatasetInfo:
    root: Path
    n_t2i: int
    n_edit: int
    total_sha256: str | None
    metadata: dict[str, Any]


def decode_png(data: bytes) -> torch.Tensor:
    """PNG bytes -> (3, H, W) float tensor in [-1, 1]."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def read_shard(path: Path) -> dict[str, dict[str, bytes]]:
    """{key: {"png"|"src.png"|"tgt.png"|"json": bytes}} for one shard (DataError naming a corrupt shard)."""
    from unipic.data.shards import read_shard_members

    return read_shard_members(path)


class DatasetIndex:
    """The dataset's index.parquet, filtered to a split, grouped by kind and shard."""

    def __init__(self, root: Path, split: str = "train"):
        from unipic.data.shards import read_index

        self.root = Path(root)
        df = read_index(self.root)
        missing = {"sample_id", "kind", "text", "shard"} - set(df.columns)
        if missing:
            raise DataError(f"{self.root}/index.parquet lacks columns {sorted(missing)}; regenerate the dataset")
        if split != "all" and "split" in df.columns:
            df = df[df["split"] == split]
        self.df = df.reset_index(drop=True)

    def rows(self, kind: str):
        return self.df[self.df["kind"] == kind]

    def info(self) -> DatasetInfo:
        manifest = self.root / "manifest.json"
        total, meta = None, {}
        if manifest.is_file():
            data = json.loads(manifest.read_text())
            total, meta = data.get("total_sha256"), data.get("metadata", {})
        return DatasetInfo(self.root, len(self.rows("t2i")), len(self.rows("edit")), total, meta)


class KindStream:
    """Deterministic, resumable stream of one kind's samples (see the module docstring)."""

    def __init__(self, root: Path, rows, kind: str, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 cache_loader: Callable[[str], dict[str, dict[str, torch.Tensor]]] | None = None,
                 task_weights: Mapping[str, float] | None = None):
        rows = _reweighted(rows, task_weights, seed, kind) if task_weights else rows
        if len(rows) == 0:
            raise DataError(f"the dataset at {root} has no '{kind}' samples in this split")
        if len(rows) < batch_size * world_size:
            raise DataError(f"the dataset has {len(rows)} '{kind}' samples, fewer than one global batch "
                            f"({batch_size} x {world_size} processes); lower the batch size")
        self.root, self.kind, self.batch_size = Path(root), kind, batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.by_shard: dict[str, list[tuple[str, str]]] = {}
        for sid, text, shard in zip(rows["sample_id"], rows["text"], rows["shard"]):
            self.by_shard.setdefault(str(shard), []).append((str(sid), str(text)))
        self.shard_names = sorted(self.by_shard)
        self.cache_loader = cache_loader
        self.epoch = self.shard_pos = self.sample_pos = 0
        self._loaded: tuple[int, int] | None = None
        self._order: list[tuple[str, str]] = []
        self._members: dict[str, dict[str, bytes]] = {}
        self._cached: dict[str, dict[str, torch.Tensor]] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_shard.values())

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "shard_pos": self.shard_pos, "sample_pos": self.sample_pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.shard_pos, self.sample_pos = state["epoch"], state["shard_pos"], state["sample_pos"]
        self._loaded = None

    def _shard_order(self, epoch: int) -> list[str]:
        rng = np.random.default_rng([self.seed, epoch, KIND_IDS[self.kind]])
        return [self.shard_names[i] for i in rng.permutation(len(self.shard_names))]

    def _load(self) -> None:
        shard = self._shard_order(self.epoch)[self.shard_pos]
        entries = self.by_shard[shard]
        rng = np.random.default_rng([self.seed, self.epoch, KIND_IDS[self.kind], self.shard_pos])
        self._order = [entries[i] for i in rng.permutation(len(entries))]
        if self.cache_loader is not None:
            self._cached = self.cache_loader(shard)
            self._members = {}
        else:
            self._members = read_shard(self.root / shard)
            self._cached = {}
        self._loaded = (self.epoch, self.shard_pos)

    def _advance(self) -> None:
        self.sample_pos += 1
        if self.sample_pos >= len(self._order):
            self.sample_pos = 0
            self.shard_pos += 1
            if self.shard_pos >= len(self.shard_names):
                self.shard_pos = 0
                self.epoch += 1

    def next_entries(self, n: int) -> list[tuple[str, str, dict[str, Any]]]:
        out = []
        for _ in range(n):
            if self._loaded != (self.epoch, self.shard_pos):
                self._load()
            sid, text = self._order[self.sample_pos]
            if self._cached:
                payload: dict[str, Any] = self._cached.get(sid)
            else:
                payload = self._members.get(sid)
            if payload is None:
                raise DataError(f"sample {sid} is listed in index.parquet but missing from its shard "
                                f"{self._shard_order(self.epoch)[self.shard_pos]}; regenerate the dataset")
            out.append((sid, text, payload))
            self._advance()
        return out

    def next_batch(self) -> T2IBatch | EditBatch:
        entries = self.next_entries(self.batch_size * self.world_size)
        mine = entries[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]
        ids = [e[0] for e in mine]
        texts = [e[1] for e in mine]
        if self.cache_loader is not None:
            cached = {k: torch.stack([e[2][k] for e in mine]) for k in mine[0][2]}
            empty = torch.empty(0)
            if self.kind == "t2i":
                return T2IBatch(empty, texts, ids, cached=cached)
            return EditBatch(empty, empty, texts, ids, cached=cached)
        if self.kind == "t2i":
            images = _stack([_member(e, "png") for e in mine], ids)
            return T2IBatch(images, texts, ids)
        return EditBatch(_stack([_member(e, "src.png") for e in mine], ids),
                         _stack([_member(e, "tgt.png") for e in mine], ids), texts, ids)


def _member(entry: tuple[str, str, dict[str, bytes]], ext: str) -> bytes:
    sid, _, members = entry
    if ext not in members:
        raise DataError(f"sample {sid} has no '{ext}' member (has {sorted(members)}); the shard is malformed")
    return members[ext]


def _stack(blobs: list[bytes], ids: list[str]) -> torch.Tensor:
    images = [decode_png(b) for b in blobs]
    shapes = {tuple(x.shape) for x in images}
    if len(shapes) != 1:
        raise DataError(f"images of different sizes {sorted(shapes)} in one batch (samples {ids[:4]}...); "
                        "training needs one resolution per dataset - regenerate with a fixed image_size")
    return torch.stack(images)


def _reweighted(rows, weights: Mapping[str, float], seed: int, kind: str):
    """Rows repeated by their task's weight (see the module docstring); order is restored by the stream."""
    if "task" not in rows.columns:
        raise DataError("task_weights needs a 'task' column in index.parquet; regenerate the dataset")
    w = rows["task"].map(lambda t: float(weights.get(str(t), 1.0))).to_numpy()
    frac = np.random.default_rng([seed, KIND_IDS[kind], 7]).random(len(w))
    reps = np.floor(w).astype(int) + (frac < w - np.floor(w))
    return rows.loc[rows.index.repeat(reps)]


EditRatio = float | Sequence[tuple[int, float]]  # a constant share, or (end step, share) phases


def edits_before(n: int, edit_ratio: EditRatio) -> float:
    """How many of the first n steps should be edit steps; past the last phase its ratio goes on."""
    if isinstance(edit_ratio, (int, float)):
        return n * float(edit_ratio)
    total, start = 0.0, 0
    for end, ratio in edit_ratio:
        total += ratio * max(0, min(n, end) - start)
        start = max(start, end)
    return total + edit_ratio[-1][1] * max(0, n - start)


def ratio_range(edit_ratio: EditRatio) -> tuple[float, float]:
    ratios = [float(edit_ratio)] if isinstance(edit_ratio, (int, float)) else [r for _, r in edit_ratio]
    return min(ratios), max(ratios)


def kind_for_step(n: int, edit_ratio: EditRatio) -> str:
    """Edit batches spread evenly within each phase: step n is an edit step when the running count of
    edits it should have had, floor(edits_before(n + 1)), goes up."""
    return ("edit" if math.floor(edits_before(n + 1, edit_ratio) + 1e-9) > math.floor(edits_before(n, edit_ratio) + 1e-9)
            else "t2i")


class JointBatches:
    """Interleaves T2I and edit batches at `edit_ratio` (constant or phased); the position is checkpointable."""

    def __init__(self, t2i: KindStream | None, edit: KindStream | None, edit_ratio: EditRatio):
        lo, hi = ratio_range(edit_ratio)
        if hi > 0 and edit is None:
            raise DataError(f"edit_ratio={edit_ratio} but the dataset has no edit samples; set edit_ratio=0 or "
                            "use a dataset generated with --task both")
        if lo < 1 and t2i is None:
            raise DataError(f"edit_ratio={edit_ratio} but the dataset has no t2i samples; set edit_ratio=1 or "
                            "use a dataset generated with --task both")
        self.streams = {"t2i": t2i, "edit": edit}
        self.edit_ratio = edit_ratio
        self.n = 0

    def __iter__(self) -> JointBatches:
        return self

    def __next__(self) -> T2IBatch | EditBatch:
        kind = kind_for_step(self.n, self.edit_ratio)
        self.n += 1
        return self.streams[kind].next_batch()  # type: ignore[union-attr]

    def state_dict(self) -> dict[str, Any]:
        return {"n": self.n, **{k: s.state_dict() for k, s in self.streams.items() if s is not None}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.n = state["n"]
        for k, s in self.streams.items():
            if s is not None:
                s.load_state_dict(state[k])


def build_joint_batches(root: Path, *, batch_size: int, edit_ratio: EditRatio, seed: int, split: str = "train",
                        rank: int = 0, world_size: int = 1,
                        cache_loaders: dict[str, Callable[[str], dict[str, dict[str, torch.Tensor]]]] | None = None,
                        task_weights: Mapping[str, float] | None = None, edit_batch_size: int | None = None,
                        ) -> tuple[JointBatches, DatasetInfo]:
    index = DatasetIndex(root, split)
    if task_weights and "task" in index.df.columns:
        unknown = sorted({t for t, w in task_weights.items() if w != 1} - set(index.df["task"].astype(str)))
        if unknown:
            raise DataError(f"task_weights names tasks {unknown} that the dataset at {root} does not have "
                            f"(it has {sorted(set(index.df['task'].astype(str)))})")
    streams: dict[str, KindStream | None] = {}
    lo, hi = ratio_range(edit_ratio)
    for kind, needed in (("t2i", lo < 1), ("edit", hi > 0)):
        rows = index.rows(kind)
        if not needed or len(rows) == 0:
            streams[kind] = None
            continue
        loader = (cache_loaders or {}).get(kind)
        size = edit_batch_size if kind == "edit" and edit_batch_size else batch_size
        streams[kind] = KindStream(root, rows, kind, size, seed, rank, world_size, loader, task_weights)
    return JointBatches(streams["t2i"], streams["edit"], edit_ratio), index.info()
