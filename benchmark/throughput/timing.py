"""Synchronised timing: CUDA events on a GPU, ``perf_counter`` on the CPU.

GPU work is asynchronous: a host clock read right after a launch measures the launch, not the
work. Every measurement here synchronises before it starts and after it ends, and throughput
loops put no synchronisation between iterations (that would add a bubble per call and turn a
throughput figure into a latency one).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], n: int, device: torch.device) -> float:
    """Seconds for ``n`` back-to-back calls of ``fn``, synchronised at both ends."""
    synchronize(device)
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(n):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0
    began = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - began


@dataclass(frozen=True)
class Throughput:
    iters: int
    seconds: float
    warmup_s: float  # warm-up calls (compilation and cuDNN autotuning happen here), not timed
    first_call_s: float  # the first call alone: the compile time of a compiled row

    def per_second(self, batch: int) -> float:
        return batch * self.iters / self.seconds


def throughput(
    fn: Callable[[], object],
    device: torch.device,
    *,
    warmup: int,
    min_iters: int,
    max_iters: int,
    min_time_s: float,
) -> Throughput:
    """Time ``fn`` after ``warmup`` calls (at least one: the first call compiles/autotunes).

    The number of timed calls is chosen from one timed call so that the loop lasts about
    ``min_time_s`` (within ``[min_iters, max_iters]``).
    """
    first = timed(fn, 1, device)
    rest = timed(fn, max(0, warmup - 1), device) if warmup > 1 else 0.0
    estimate = max(timed(fn, 1, device), 1e-6)
    iters = int(min(max_iters, max(min_iters, math.ceil(min_time_s / estimate))))
    return Throughput(iters, timed(fn, iters, device), first + rest + estimate, first)


def latency_ms(fn: Callable[[], object], device: torch.device, iters: int) -> dict[str, float]:
    """p50/p90 of ``iters`` single calls, each synchronised (the latency a caller waits)."""
    times = [timed(fn, 1, device) * 1000.0 for _ in range(iters)]
    return {
        "p50": float(np.percentile(times, 50)),
        "p90": float(np.percentile(times, 90)),
        "n": iters,
    }


__all__ = ["Throughput", "latency_ms", "synchronize", "throughput", "timed"]
