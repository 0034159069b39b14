"""The base Trainer: owns the loop; subclasses say how one batch becomes a loss.

torchtitan style. A subclass builds its model and data, calls `super().__init__`, and overrides
`forward_backward_step(batch)` (loss of one batch, backward included, because RL-style losses may call
backward several times per step) and, when the step itself differs, `train_step(batch)`. Everything
generic lives here: optimizer and schedule, clipping, bf16 autocast, EMA, gradient checkpointing,
DeepSpeed, checkpoints with exact resume, metrics (JSONL + curve PNG), sample grids and progress.

Exact resume: the optimizer, schedule, EMA, the RNG states (python, numpy, torch and the trainer's own
generator) and the data position are all checkpointed, and the loop draws its randomness only from
them, so "k steps, stop, resume, m steps" reproduces the losses of "k+m steps" on CPU.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from unipic.config.train import TrainerConfig
from unipic.errors import ConfigError, UniPicError
from unipic.logging import get_logger
from unipic.progress import progress_bar
from unipic.training.checkpoint import CheckpointManager
from unipic.training.ema import EMA
from unipic.training.metrics import MetricsLog, Spans, image_grid, peak_rss_gb, plot_curves, rss_gb
from unipic.training.optim import build_lr_scheduler, build_optimizer
from unipic.training.parallel import ParallelContext, all_reduce_mean, build_engine, init_parallel
from unipic.training.precision import resolve_precision

log = get_logger(__name__)


class StatefulIterator(Protocol):
    """A batch source whose position can be saved and restored (see unipic.training.data)."""

    def __next__(self) -> Any: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class StepOutput:
    """What one forward/backward reports. `tokens` = image tokens processed (for throughput)."""

    loss: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)
    tokens: int = 0
    samples: int = 0


@dataclass
class TrainResult:
    first_step: int
    last_step: int
    losses: dict[int, float]
    checkpoint: Path | None
    metrics_path: Path
    curve_png: Path | None
    sample_grids: list[Path]


def capture_rng(generator: torch.Generator) -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "generator": generator.get_state()}


def restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])


class Trainer:
    """Base trainer. Subclasses set `section` (the config key, for messages) and implement
    `forward_backward_step`; optional hooks: `sample_images`, `estimate_memory_bytes`, `extra_state`,
    `load_extra_state`, `checkpoint_metadata`, `on_train_end`."""

    section: str = "train"

    def __init__(self, cfg: TrainerConfig, model: nn.Module, data: StatefulIterator, work_dir: Path, *,
                 ctx: ParallelContext | None = None, store_cfg: Any = None):
        self.cfg = cfg
        self.work_dir = Path(work_dir)
        self.ctx = ctx or init_parallel(cfg.deepspeed)
        self.store_cfg = store_cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        seed = cfg.seed + self.ctx.rank
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.data = data
        self.check_memory(model)
        if cfg.gradient_checkpointing:
            if not hasattr(model, "enable_gradient_checkpointing"):
                raise ConfigError(f"{self.section}.gradient_checkpointing=true but {type(model).__name__} "
                                  "does not support it; set it to false")
            model.enable_gradient_checkpointing()
        model.train()
        optimizer = build_optimizer(model, cfg)
        scheduler = build_lr_scheduler(optimizer, cfg)
        self.engine = build_engine(model, optimizer, scheduler, cfg, self.ctx)
        self.model = self.engine.module
        self.forward_model = self.engine.forward_module
        self.precision = resolve_precision(cfg.precision, self.device, f"{self.section}.precision")
        log.info("%s: precision %s (asked: %s)", self.section, self.precision, cfg.precision)
        with self.engine.gathered():
            self.ema = EMA(self.model, cfg.ema_decay, cfg.ema_warmup) if cfg.ema_decay > 0 else None
        self.checkpoints = CheckpointManager(self.work_dir / "checkpoints", cfg.keep_last, self.ctx,
                                             publish_uri=cfg.checkpoint_uri, store_cfg=store_cfg)
        self.metrics = MetricsLog(self.work_dir / "metrics.jsonl", enabled=self.ctx.is_main)
        self.spans = Spans()
        self.step = 0

    # ----- hooks for subclasses -------------------------------------------------------------------

    def forward_backward_step(self, batch: Any) -> StepOutput:
        """Loss of one batch; must call `self.backward(loss)`. Run the model under `self.autocast()`."""
        raise NotImplementedError

    def sample_images(self) -> dict[str, list[Any]] | None:
        """Images to show in the sample grid (called with EMA weights, RNG forked). None = no grid."""
        return None

    def estimate_memory_bytes(self, model: nn.Module) -> int | None:
        """Estimated peak bytes of a training step, to refuse a config that cannot fit. None = unknown."""
        return None

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def checkpoint_metadata(self) -> dict[str, Any]:
        return {}

    def on_train_end(self, result: TrainResult) -> None:
        pass

    # ----- building blocks for subclasses ---------------------------------------------------------

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            device = "cuda" if next(self.model.parameters()).is_cuda else "cpu"
            return torch.autocast(device, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        with self.spans("backward"):
            self.engine.backward(loss)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def check_memory(self, model: nn.Module) -> None:
        need = self.estimate_memory_bytes(model)
        if need is None:
            return
        if self.cfg.max_memory_gb:
            limit_gb, where = self.cfg.max_memory_gb, f"{self.section}.max_memory_gb"
        else:
            from unipic.training.memory import available_bytes

            device = next(model.parameters()).device
            limit_gb, where = 0.9 * available_bytes(device) / 2**30, f"90% of the free memory on {device}"
        if need / 2**30 > limit_gb:
            raise ConfigError(
                f"estimated peak memory {need / 2**30:.1f} GiB for {self.section}.batch_size="
                f"{self.cfg.batch_size} exceeds {limit_gb:.1f} GiB ({where}); lower {self.section}.batch_size, "
                f"set {self.section}.gradient_checkpointing=true or {self.section}.deepspeed.zero_stage=3, or "
                f"raise {self.section}.max_memory_gb"
            )

    @contextlib.contextmanager
    def ema_weights(self) -> Iterator[None]:
        with self.engine.gathered():
            if self.ema is None:
                yield
            else:
                with self.ema.swapped_in(self.model):
                    yield

    def ema_state(self) -> dict[str, torch.Tensor]:
        """The weights to export: EMA where there is one, else the live weights (full, even under ZeRO-3)."""
        with self.engine.gathered():
            live = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if self.ema is not None:
            live.update({k: v.clone() for k, v in self.ema.state_dict().items()})
        return live

    # ----- the step and the loop ------------------------------------------------------------------

    def train_step(self, batch: Any) -> dict[str, float]:
        self.engine.zero_grad()
        with self.spans("forward_backward"):
            out = self.forward_backward_step(batch)
        with self.spans("optimizer"):
            lr = self.engine.lr
            grad_norm = self.engine.step()
        if self.ema is not None and (self.step + 1) % self.cfg.ema_every == 0:
            with self.spans("ema"), self.engine.gathered():
                self.ema.update(self.model)
        loss = float(out.loss.detach().float())
        if not math.isfinite(loss):
            raise UniPicError(
                f"loss became {loss} at step {self.step + 1}; lower {self.section}.lr or raise "
                f"{self.section}.warmup_steps, and resume from the last checkpoint"
            )
        return {"loss": loss, "lr": lr, "grad_norm": grad_norm, "tokens": out.tokens, "samples": out.samples,
                **out.metrics}

    def save_checkpoint(self) -> Path:
        state = {"step": self.step, "rng": capture_rng(self.generator), "data": self.data.state_dict(),
                 "ema_updates": self.ema.num_updates if self.ema is not None else 0, "extra": self.extra_state()}
        tensors = {"ema": self.ema.state_dict()} if self.ema is not None else None
        with self.spans("checkpoint"):
            return self.checkpoints.save(self.step, self.engine, state, tensors, self.checkpoint_metadata())

    def resume(self, path: Path | None = None) -> bool:
        """Restore everything from `path`, else the latest complete local checkpoint, else the latest one
        published under `checkpoint_uri` (fetched and verified). False when there is none."""
        path = path or self.checkpoints.latest()
        if path is None and self.checkpoints.publish_uri:
            path = self.checkpoints.fetch_latest_remote()
        if path is None:
            log.info("no checkpoint under %s: starting from step 0", self.checkpoints.root)
            return False
        state, tensors = self.checkpoints.load(Path(path), self.engine)
        if self.ema is not None:
            if "ema" not in tensors:
                raise UniPicError(f"checkpoint {path} has no EMA weights but {self.section}.ema_decay > 0; "
                                  "resume with the EMA setting it was trained with")
            self.ema.load_state_dict(tensors["ema"])
            self.ema.num_updates = int(state.get("ema_updates", 0))
        self.step = int(state["step"])
        self.data.load_state_dict(state["data"])
        restore_rng(state["rng"], self.generator)
        self.load_extra_state(state.get("extra", {}))
        self.metrics.truncate_after(self.step)
        log.info("resumed from %s at step %d", path, self.step)
        return True

    def save_samples(self) -> Path | None:
        if not self.ctx.is_main and self.cfg.deepspeed.zero_stage != 3:
            return None
        with self.spans("samples"), torch.random.fork_rng(), self.ema_weights():
            was_training = self.model.training
            self.model.eval()
            try:
                groups = self.sample_images() if self.ctx.is_main else None
            finally:
                self.model.train(was_training)
        if not groups:
            return None
        images, labels = [], []
        for name, imgs in groups.items():
            images.extend(imgs)
            labels.extend([name] * len(imgs))
        cols = max(len(v) for v in groups.values())
        scale = max(1, 96 // images[0].size[0])
        out = self.work_dir / "samples" / f"step-{self.step:08d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.stem + ".tmp.png")
        image_grid(images, cols=cols, labels=labels, scale=scale).save(tmp)
        tmp.replace(out)
        return out

    def train(self, resume: bool | Path = False, stop_at: int | None = None) -> TrainResult:
        """Run to `cfg.steps` (or stop early at `stop_at`, as an interruption would, checkpointing there).

        `resume`: True = the latest complete checkpoint (if any), a Path = that checkpoint.
        """
        if resume:
            self.resume(resume if isinstance(resume, Path) else None)
        first = self.step
        cfg = self.cfg
        losses: dict[int, float] = {}
        grids: list[Path] = []
        window: list[dict[str, float]] = []
        last_ckpt: Path | None = None
        window_start = time.perf_counter()
        bar = progress_bar(total=cfg.steps, desc=f"{self.section}", unit="step") if self.ctx.is_main else None
        if bar is not None:
            bar.update(self.step)
        try:
            end = min(cfg.steps, stop_at) if stop_at is not None else cfg.steps
            while self.step < end:
                with self.spans("data"):
                    batch = next(self.data)
                rec = self.train_step(batch)
                self.step += 1
                losses[self.step] = rec["loss"]
                window.append(rec)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{rec['loss']:.4f}", refresh=False)
                if self.step % cfg.log_every == 0 or self.step == end:
                    self.log_window(window, time.perf_counter() - window_start)
                    window = []
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                    last_ckpt = self.save_checkpoint()
                if cfg.sample_every and self.step % cfg.sample_every == 0:
                    grid = self.save_samples()
                    grids += [grid] if grid else []
                if not window:  # checkpoint/sample time stays out of the next window's throughput (own spans)
                    window_start = time.perf_counter()
        finally:
            if bar is not None:
                bar.close()
        if last_ckpt is None or not last_ckpt.name.endswith(f"{self.step:08d}"):
            last_ckpt = self.save_checkpoint() if self.step > first or self.checkpoints.latest() is None else \
                self.checkpoints.latest()
        if not cfg.sample_every or self.step % cfg.sample_every:
            grid = self.save_samples()
            grids += [grid] if grid else []
        curve = plot_curves(self.metrics.read(), self.work_dir / "loss_curve.png") if self.ctx.is_main else None
        result = TrainResult(first, self.step, losses, last_ckpt, self.metrics.path, curve, grids)
        self.on_train_end(result)
        return result

    def log_window(self, window: list[dict[str, float]], seconds: float) -> None:
        n = len(window)
        spans = self.spans.pop()
        loss = all_reduce_mean(sum(r["loss"] for r in window) / n, self.ctx)
        tokens = sum(r["tokens"] for r in window) * self.ctx.world_size
        samples = sum(r["samples"] for r in window) * self.ctx.world_size
        last = window[-1]
        record: dict[str, Any] = {
            "step": self.step, "loss": loss, "loss_last": last["loss"], "lr": last["lr"],
            "grad_norm": last["grad_norm"], "step_time_s": seconds / n,
            "img_tok_per_s": tokens / seconds if seconds > 0 else None,
            "samples_per_s": samples / seconds if seconds > 0 else None,
            "rss_gb": rss_gb(), "peak_rss_gb": peak_rss_gb(), "world_size": self.ctx.world_size,
        }
        record.update({f"time_{k}_s": v / n for k, v in spans.items()})
        skip = {"loss", "lr", "grad_norm", "tokens", "samples"}
        for key in {k for r in window for k in r} - skip:
            vals = [r[key] for r in window if key in r and isinstance(r[key], (int, float))]
            if vals:
                record[key] = sum(vals) / len(vals)
        self.metrics.write(record)
