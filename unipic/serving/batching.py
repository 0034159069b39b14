"""`MicroBatcher`: concurrent compatible requests share one pipeline call.

KServe's Python server does not batch (its `batcher` is a cluster sidecar), and a diffusion step costs about the
same for 1 or 8 images on an under-used accelerator, so batching is where serving throughput comes from. The
oldest waiting job picks the batch key (FIFO, no starvation); jobs that arrive while a batch runs form the next
one, and when recent batches had company the oldest job also waits up to `max_wait_ms` for more. A lone client
(recent batches of one) never waits, so batching costs it nothing. One worker thread runs the model: the event loop stays
free to accept, validate and answer requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from unipic.config.serve import BatchingConfig
from unipic.logging import get_logger
from unipic.serving.schemas import RequestError

log = get_logger(__name__)


class Batchable(Protocol):
    def batch_key(self) -> tuple[Any, ...]: ...

    @property
    def cost(self) -> int: ...


J = TypeVar("J", bound=Batchable)


@dataclass
class _Pending(Generic[J]):
    job: J
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class BatchInfo:
    """What a job learns about the call that served it."""

    size: int
    queue_s: float
    run_s: float


class MicroBatcher(Generic[J]):
    """`await batcher.submit(job)` -> (result, BatchInfo). `run_batch(jobs)` runs in the worker thread and
    returns one result per job, in order."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[J]], list[Any]],
        cfg: BatchingConfig,
        on_depth: Callable[[int], None] | None = None,
        on_batch: Callable[[int], None] | None = None,
    ):
        self._run_batch = run_batch
        self.cfg = cfg
        self._pending: list[_Pending[J]] = []
        self._arrived: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="unipic-batch")
        self._on_depth = on_depth or (lambda n: None)
        self._on_batch = on_batch or (lambda n: None)
        self.batches_run = 0
        self._recent_jobs = 1.0  # EWMA of jobs per batch: wait for company only when recent batches had some

    @property
    def depth(self) -> int:
        return len(self._pending)

    @property
    def limit(self) -> int:
        return self.cfg.max_batch_images if self.cfg.enabled else 1

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._arrived = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._loop(), name="unipic-micro-batcher")

    async def submit(self, job: J) -> tuple[Any, BatchInfo]:
        if len(self._pending) >= self.cfg.max_queue:
            raise RequestError(
                429, f"the queue is full ({self.cfg.max_queue} waiting, batching.max_queue); retry later"
            )
        self._ensure_worker()
        pending = _Pending(job, asyncio.get_running_loop().create_future())
        self._pending.append(pending)
        self._on_depth(len(self._pending))
        assert self._arrived is not None
        self._arrived.set()
        return await pending.future

    def _take(self) -> list[_Pending[J]]:
        """The oldest job plus every compatible job behind it, up to `limit` images (the oldest always goes)."""
        key = self._pending[0].job.batch_key()
        taken, cost = [], 0
        for p in self._pending:
            if p.job.batch_key() != key:
                continue
            if taken and cost + p.job.cost > self.limit:
                break
            taken.append(p)
            cost += p.job.cost
        ids = {id(p) for p in taken}
        self._pending = [p for p in self._pending if id(p) not in ids]
        return taken

    def _ready_cost(self) -> int:
        key = self._pending[0].job.batch_key()
        return sum(p.job.cost for p in self._pending if p.job.batch_key() == key)

    async def _loop(self) -> None:
        assert self._arrived is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            deadline = self._pending[0].enqueued + self.cfg.max_wait_ms / 1000.0
            while self.cfg.enabled and self._recent_jobs > 1.05 and self._ready_cost() < self.limit:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), timeout=remaining)
                except TimeoutError:
                    break
            batch = [p for p in self._take() if not p.future.done()]
            self._on_depth(len(self._pending))
            if not batch:
                continue
            started = time.perf_counter()
            size = sum(p.job.cost for p in batch)
            self._on_batch(size)
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, [p.job for p in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"run_batch returned {len(results)} results for {len(batch)} jobs")
            except Exception as exc:
                log.exception("batch of %d failed", len(batch))
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            run_s = time.perf_counter() - started
            self.batches_run += 1
            self._recent_jobs = 0.5 * self._recent_jobs + 0.5 * len(batch)
            for p, result in zip(batch, results):
                if not p.future.done():
                    p.future.set_result(
                        (result, BatchInfo(size=size, queue_s=started - p.enqueued, run_s=run_s))
                    )

    def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
