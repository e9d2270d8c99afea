"""Run independent per-patient jobs in-process or in a ``spawn`` process pool.

The pool uses ``spawn``: the parent may hold torch/ITK threads, and forking a process that holds
threads is unsafe. With ``startup_s`` set, the first job runs in-process and is timed: a pool
costs seconds to start (each worker imports torch, MONAI, ...), so it is used only when the jobs
left would save more than that. Results are the same either way; only their order may differ.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

R = TypeVar("R")
Job = tuple[Any, ...]


def run_jobs(
    func: Callable[..., R],
    jobs: Sequence[Job],
    workers: int,
    initializer: Callable[[], None] | None = None,
    startup_s: float | None = None,
) -> Iterator[tuple[Job, R]]:
    """Yield ``(job, func(*job))`` for every job, in order of completion.

    ``func`` must be picklable (top-level). ``initializer`` (if any) runs once in each pool
    worker (not in-process). ``startup_s=None`` uses a pool whenever ``workers > 1`` and there
    are two jobs or more; a number runs the first job in-process, times it, and uses a pool for
    the rest only if that saves at least ``startup_s`` seconds. On any error (or when the caller
    stops iterating) pending jobs are cancelled before the error propagates.
    """
    jobs = list(jobs)
    if not jobs:
        return
    if startup_s is None:
        use_pool = workers > 1 and len(jobs) > 1
    else:
        started = time.perf_counter()
        yield jobs[0], func(*jobs[0])
        per_job = time.perf_counter() - started
        jobs = jobs[1:]
        if not jobs:
            return
        saving = len(jobs) * per_job * (1 - 1 / min(workers, len(jobs)))
        use_pool = workers > 1 and saving >= startup_s
    if not use_pool:
        for job in jobs:
            yield job, func(*job)
        return
    with ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)),
        mp_context=mp.get_context("spawn"),
        initializer=initializer,
    ) as pool:
        futures = {pool.submit(func, *job): job for job in jobs}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


__all__ = ["run_jobs"]
