"""MicroBatcher: compatible jobs share a call, incompatible ones do not, limits hold, failures stay contained."""

import asyncio
import threading
import time
from dataclasses import dataclass

import pytest

from unipic.config.serve import BatchingConfig
from unipic.serving.batching import MicroBatcher
from unipic.serving.schemas import RequestError


@dataclass
class FakeJob:
    key: str
    n: int = 1
    tag: int = 0

    def batch_key(self):
        return (self.key,)

    @property
    def cost(self):
        return self.n


class Recorder:
    def __init__(self, delay=0.0, fail_tag=None):
        self.calls = []
        self.delay = delay
        self.fail_tag = fail_tag
        self.threads = set()

    def __call__(self, jobs):
        self.threads.add(threading.get_ident())
        self.calls.append([(j.key, j.tag) for j in jobs])
        time.sleep(self.delay)
        if any(j.tag == self.fail_tag for j in jobs):
            raise RuntimeError("model failed")
        return [f"{j.key}-{j.tag}" for j in jobs]


def run(coro):
    return asyncio.run(coro)


def test_concurrent_compatible_jobs_share_one_call():
    rec = Recorder()

    async def main():
        b = MicroBatcher(rec, BatchingConfig(max_batch_images=8, max_wait_ms=50))
        out = await asyncio.gather(*(b.submit(FakeJob("a", tag=i)) for i in range(6)))
        b.close()
        return out

    out = run(main())
    assert [r for r, _ in out] == [f"a-{i}" for i in range(6)]
    assert len(rec.calls) == 1 and all(info.size == 6 for _, info in out)


def test_incompatible_keys_never_mix_and_fifo_picks_the_key():
    rec = Recorder()

    async def main():
        b = MicroBatcher(rec, BatchingConfig(max_batch_images=8, max_wait_ms=30))
        jobs = [FakeJob("a", tag=0), FakeJob("b", tag=1), FakeJob("a", tag=2), FakeJob("b", tag=3)]
        await asyncio.gather(*(b.submit(j) for j in jobs))
        b.close()

    run(main())
    assert all(len({k for k, _ in call}) == 1 for call in rec.calls)
    assert rec.calls[0] == [("a", 0), ("a", 2)]


def test_image_budget_is_respected_and_oversized_job_still_runs():
    rec = Recorder()

    async def main():
        b = MicroBatcher(rec, BatchingConfig(max_batch_images=4, max_wait_ms=30))
        jobs = [FakeJob("a", n=3, tag=0), FakeJob("a", n=2, tag=1), FakeJob("a", n=6, tag=2)]
        await asyncio.gather(*(b.submit(j) for j in jobs))
        b.close()

    run(main())
    assert [len(c) for c in rec.calls] == [1, 1, 1]


def test_disabled_batching_runs_one_job_per_call_in_one_worker_thread():
    rec = Recorder()

    async def main():
        b = MicroBatcher(rec, BatchingConfig(enabled=False, max_wait_ms=50))
        await asyncio.gather(*(b.submit(FakeJob("a", tag=i)) for i in range(4)))
        b.close()

    run(main())
    assert [len(c) for c in rec.calls] == [1, 1, 1, 1]
    assert len(rec.threads) == 1 and threading.get_ident() not in rec.threads


def test_jobs_arriving_during_a_batch_form_the_next_batch():
    rec = Recorder(delay=0.2)

    async def main():
        b = MicroBatcher(rec, BatchingConfig(max_batch_images=8, max_wait_ms=0))
        first = asyncio.ensure_future(b.submit(FakeJob("a", tag=0)))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(b.submit(FakeJob("a", tag=i))) for i in range(1, 5)]
        await asyncio.gather(first, *rest)
        b.close()

    run(main())
    assert [len(c) for c in rec.calls] == [1, 4]


def test_a_failing_batch_fails_its_jobs_only_and_the_loop_lives_on():
    rec = Recorder(fail_tag=1)

    async def main():
        b = MicroBatcher(rec, BatchingConfig(max_batch_images=1, max_wait_ms=0))
        results = await asyncio.gather(
            *(b.submit(FakeJob("a", tag=i)) for i in range(3)), return_exceptions=True
        )
        after = await b.submit(FakeJob("a", tag=9))
        b.close()
        return results, after

    results, after = run(main())
    assert isinstance(results[1], RuntimeError)
    assert results[0][0] == "a-0" and results[2][0] == "a-2" and after[0] == "a-9"


def test_full_queue_answers_429():
    rec = Recorder(delay=0.3)

    async def main():
        b = MicroBatcher(rec, BatchingConfig(max_batch_images=1, max_wait_ms=0, max_queue=2))
        running = [asyncio.ensure_future(b.submit(FakeJob("a", tag=0)))]
        await asyncio.sleep(0.05)  # the worker has taken job 0; two more fill the queue
        running += [asyncio.ensure_future(b.submit(FakeJob("a", tag=i))) for i in (1, 2)]
        await asyncio.sleep(0.01)
        with pytest.raises(RequestError) as info:
            await b.submit(FakeJob("a", tag=99))
        await asyncio.gather(*running)
        b.close()
        return info.value

    err = run(main())
    assert err.status == 429 and "max_queue" in err.message


def test_wait_for_company_only_under_concurrency():
    rec = Recorder()

    async def main():
        lone_batcher = MicroBatcher(rec, BatchingConfig(max_batch_images=8, max_wait_ms=60_000))
        _, lone = await asyncio.wait_for(lone_batcher.submit(FakeJob("a", tag=0)), timeout=30)
        lone_batcher.close()
        b = MicroBatcher(rec, BatchingConfig(max_batch_images=8, max_wait_ms=300))
        await asyncio.gather(*(b.submit(FakeJob("a", tag=i)) for i in range(1, 4)))  # a batch with company
        late = [asyncio.ensure_future(b.submit(FakeJob("a", tag=10)))]
        await asyncio.sleep(0.1)
        late.append(asyncio.ensure_future(b.submit(FakeJob("a", tag=11))))
        await asyncio.gather(*late)
        b.close()
        return lone

    lone = run(main())
    assert lone.size == 1  # answered without the 60 s wait (wait_for would have failed)
    assert rec.calls[-1] == [("a", 10), ("a", 11)]  # after a shared batch, the next one waited for company
