"""Temporarily set torch's CPU thread count (crop extraction and augmentation use one)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads, then restore the previous count.

    Crops and augmentation are many small torch ops, for which one thread is much faster than
    several: OpenMP start-up and spinning cost more than the op (a 40³ resampling grid: 30 ms
    with 2 threads on a busy 2-core box, 0.5 ms with one).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)
