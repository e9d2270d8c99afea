"""Peak memory of one sweep row: the device allocator's peak on CUDA, an RSS delta on the CPU.

On CUDA ``torch.cuda.max_memory_allocated`` is exact and free, so it covers the timed pass.
The CPU has no such counter (``ru_maxrss`` is a process high-water mark: it only moves when a
row beats every earlier one), so the resident set is sampled by a thread during a short extra
pass that is not timed, and the peak above the RSS before that pass is reported.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

MIB = 2**20
CUDA_METHOD = "torch.cuda.max_memory_allocated during the timed pass (weights+inputs+activations)"
CPU_METHOD = "peak RSS above the RSS before an untimed pass, sampled every 2 ms from /proc"


@dataclass
class PeakMemory:
    mib: float | None = None
    method: str = ""
    note: str | None = None


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def cuda_peak(device: torch.device) -> Iterator[PeakMemory]:
    """The allocator's peak while the block runs (reset at entry)."""
    out = PeakMemory(method=CUDA_METHOD)
    torch.cuda.reset_peak_memory_stats(device)
    yield out
    out.mib = round(torch.cuda.max_memory_allocated(device) / MIB, 1)


def cpu_peak(fn: Callable[[], object], calls: int = 3, interval_s: float = 0.002) -> PeakMemory:
    """Peak RSS above the starting RSS while ``fn`` runs ``calls`` times."""
    start = _rss_bytes()
    if start is None:
        return PeakMemory(None, CPU_METHOD, "no /proc/self/statm on this system")
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            value = _rss_bytes()
            if value is not None and value > peak[0]:
                peak[0] = value
            done.wait(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        for _ in range(calls):
            fn()
    finally:
        done.set()
        sampler.join()
    return PeakMemory(round((peak[0] - start) / MIB, 1), CPU_METHOD)


__all__ = ["CPU_METHOD", "CUDA_METHOD", "PeakMemory", "cpu_peak", "cuda_peak"]
