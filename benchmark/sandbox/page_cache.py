"""Between two workers of a run, the host forgets which file pages the first one read.

Every worker sees the same read-only files (the system, the virtual environment), and the
kernel's page cache is shared by all processes: a fold's fit, which gets the labels of the
patients other folds predict, can read chosen pages of a large file (one page per lesion, one
of two by label), and a later fold's predict can ask the kernel which pages are cached
(``preadv2`` with ``RWF_NOWAIT``, ``mincore``, or timing) and read its labels back. The files
stay unchanged, so no status check sees it. So the harness drops the clean page cache, dentries
and inodes (``/proc/sys/vm/drop_caches``) before it starts a worker after one that may have
fitted; pages a running process maps (the sandbox's server's libraries) stay, and carry nothing
a worker chose. That needs root (CI and the reference box run as root); elsewhere the channel
stays open, which the run says once and docs/isolation.md, states with its measured reach.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from pathlib import Path

DROP_CACHES = Path("/proc/sys/vm/drop_caches")
log = logging.getLogger(__name__)


@functools.cache
def can_evict() -> bool:
    """Whether this process may drop the host's caches (root on Linux)."""
    return os.access(DROP_CACHES, os.W_OK)


def evict() -> float | None:
    """Drop the clean page cache, dentries and inodes; the seconds it took, or None where this
    process may not (warned once)."""
    if not can_evict():
        _warn_open()
        return None
    clock = time.perf_counter()
    DROP_CACHES.write_text("3\n")
    return time.perf_counter() - clock


@functools.cache
def _warn_open() -> None:
    log.warning(
        "not root: the page cache is not dropped between a run's workers, so a fit can leave "
        "its labels for a later fold to read in which file pages are cached (docs/isolation.md)"
    )


__all__ = ["DROP_CACHES", "can_evict", "evict"]
