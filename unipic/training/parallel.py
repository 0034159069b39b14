"""Parallelism: plain single-process training by default, DeepSpeed ZeRO 0-3 behind a flag.

Both paths expose the same small `Engine` interface to the trainer (backward, step, zero_grad, save,
load), so the loop does not branch on the backend. On CPU DeepSpeed runs over gloo; a single process
needs the rendezvous variables set (otherwise DeepSpeed falls into MPI discovery and fails on a missing
mpi4py), and a multi-process launch is checked against the process group it really got, because a
launcher/backend mismatch otherwise trains N unsynchronised copies without any error
(notes/feas_ml.md §6).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from unipic.config.train import DeepSpeedConfig, TrainerConfig
from unipic.errors import ConfigError, UniPicError
from unipic.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class ParallelContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = "none"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend != "none"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer") from None


_MPI_ENV = (  # (rank, world size, local rank) as OpenMPI / MPICH-PMI launchers (mpirun in TrainJobs) set them
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"),
    ("PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"),
)


def adopt_mpi_env() -> None:
    """Under mpirun, translate the MPI launcher's variables to torch's, so the world size is the real one
    (setting defaults of RANK=0/WORLD_SIZE=1 there would give N silent single-process trainings)."""
    if "WORLD_SIZE" in os.environ:
        return
    for rank, size, local in _MPI_ENV:
        if size in os.environ:
            os.environ["RANK"] = os.environ.get(rank, "0")
            os.environ["WORLD_SIZE"] = os.environ[size]
            os.environ["LOCAL_RANK"] = os.environ.get(local, "0")
            if int(os.environ["WORLD_SIZE"]) > 1 and "MASTER_ADDR" not in os.environ:
                raise ConfigError(
                    f"launched by MPI with {size}={os.environ[size]} but MASTER_ADDR is not set; export "
                    "MASTER_ADDR (the rank-0 host) and MASTER_PORT in the launcher"
                )
            return


def init_parallel(ds: DeepSpeedConfig) -> ParallelContext:
    """Set up the process group (DeepSpeed) or check that we really are alone (plain)."""
    adopt_mpi_env()
    env_world = _env_int("WORLD_SIZE", 1)
    if not ds.enabled:
        if env_world > 1:
            raise ConfigError(
                f"launched with WORLD_SIZE={env_world} but deepspeed.enabled is false: every process would "
                "train its own unsynchronised copy. Set deepspeed.enabled=true, or launch a single process"
            )
        return ParallelContext()

    import torch.distributed as dist

    os.environ.setdefault("MASTER_ADDR", ds.master_addr)
    os.environ.setdefault("MASTER_PORT", str(ds.master_port))
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("LOCAL_RANK", "0")
    if ds.backend == "gloo":
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    import deepspeed

    if not dist.is_initialized():
        deepspeed.init_distributed(dist_backend=ds.backend)
    got = dist.get_world_size()
    if got != env_world:
        raise UniPicError(
            f"process-count mismatch: WORLD_SIZE={env_world} but torch.distributed has {got} process(es) "
            f"(backend {dist.get_backend()}); the launcher and the backend disagree. Use torchrun or the "
            "deepspeed launcher with deepspeed.backend=gloo on CPU"
        )
    return ParallelContext(rank=dist.get_rank(), world_size=got, local_rank=_env_int("LOCAL_RANK", 0),
                           backend=str(dist.get_backend()))


def barrier(ctx: ParallelContext) -> None:
    if ctx.distributed:
        import torch.distributed as dist

        dist.barrier()


def all_reduce_mean(value: float, ctx: ParallelContext) -> float:
    if not ctx.distributed:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / ctx.world_size


def broadcast_object(obj: Any, ctx: ParallelContext) -> Any:
    if not ctx.distributed:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class Engine:
    """What the loop needs from a backend. `module` is the bare model (for EMA, sampling, export)."""

    module: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler

    def backward(self, loss: torch.Tensor) -> None:
        raise NotImplementedError

    def step(self) -> float:
        """Clip, apply the optimizer, advance the schedule, zero the grads; return the pre-clip grad norm."""
        raise NotImplementedError

    def zero_grad(self) -> None:
        raise NotImplementedError

    def save(self, directory: Path) -> list[Path]:
        raise NotImplementedError

    def load(self, directory: Path) -> None:
        raise NotImplementedError

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @property
    def forward_module(self) -> nn.Module:
        """What to call for the training forward pass (the DeepSpeed engine wraps hooks around it)."""
        return self.module

    def gathered(self):
        """Context in which every rank sees full parameters (a no-op unless ZeRO-3)."""
        import contextlib

        return contextlib.nullcontext()


class PlainEngine(Engine):
    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler, grad_clip: float):
        self.module, self.optimizer, self.scheduler, self.grad_clip = model, optimizer, scheduler, grad_clip
        self._params = [p for g in optimizer.param_groups for p in g["params"]]

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self) -> float:
        clip = self.grad_clip if self.grad_clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self._params, clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def save(self, directory: Path) -> list[Path]:
        from safetensors.torch import save_file

        model_path = directory / "model.safetensors"
        state = {k: v.detach().contiguous().clone() for k, v in self.module.state_dict().items()}
        save_file(state, str(model_path))
        opt_path = directory / "optimizer.pt"
        torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}, opt_path)
        return [model_path, opt_path]

    def load(self, directory: Path) -> None:
        from safetensors.torch import load_file

        self.module.load_state_dict(load_file(str(directory / "model.safetensors")))
        state = torch.load(directory / "optimizer.pt", weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


def deepspeed_config(cfg: TrainerConfig, world_size: int) -> dict[str, Any]:
    ds = cfg.deepspeed
    zero: dict[str, Any] = {"stage": ds.zero_stage, "overlap_comm": ds.overlap_comm,
                            "contiguous_gradients": ds.contiguous_gradients}
    if ds.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu"}
    if ds.zero_stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return {
        "train_micro_batch_size_per_gpu": cfg.batch_size,
        "gradient_accumulation_steps": 1,
        "train_batch_size": cfg.batch_size * world_size,
        "gradient_clipping": cfg.grad_clip,
        "zero_optimization": zero,
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


class DeepSpeedEngine(Engine):
    """DeepSpeed engine over fp32 weights; bf16 comes from torch.autocast in the trainer, as in plain mode,
    so both backends compute the same numbers and only the partitioning of states differs."""

    TAG = "deepspeed"

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler, cfg: TrainerConfig, ctx: ParallelContext):
        import deepspeed

        self.stage = cfg.deepspeed.zero_stage
        engine, opt, _, sched = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler, config=deepspeed_config(cfg, ctx.world_size)
        )
        self.engine = engine
        self.module = engine.module
        self.optimizer = opt
        self.scheduler = sched

    def backward(self, loss: torch.Tensor) -> None:
        self.engine.backward(loss)

    def step(self) -> float:
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        return float(norm) if norm is not None else float("nan")

    def zero_grad(self) -> None:
        self.engine.zero_grad()

    @property
    def lr(self) -> float:
        return float(self.engine.get_lr()[0])

    @property
    def forward_module(self) -> nn.Module:
        return self.engine

    def save(self, directory: Path) -> list[Path]:
        self.engine.save_checkpoint(str(directory), tag=self.TAG, save_latest=False)
        return sorted(p for p in (directory / self.TAG).rglob("*") if p.is_file())

    def load(self, directory: Path) -> None:
        path, _ = self.engine.load_checkpoint(str(directory), tag=self.TAG, load_optimizer_states=True,
                                              load_lr_scheduler_states=True)
        if path is None:
            raise UniPicError(f"DeepSpeed found no checkpoint under {directory}/{self.TAG}")

    def gathered(self):
        import contextlib

        if self.stage != 3:
            return contextlib.nullcontext()
        import deepspeed

        return deepspeed.zero.GatheredParameters(list(self.module.parameters()), modifier_rank=None)


def build_engine(model: nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler, cfg: TrainerConfig,
                 ctx: ParallelContext) -> Engine:
    if cfg.deepspeed.enabled:
        return DeepSpeedEngine(model, optimizer, scheduler, cfg, ctx)
    return PlainEngine(model, optimizer, scheduler, cfg.grad_clip)
