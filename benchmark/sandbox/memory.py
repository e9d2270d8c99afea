"""How much memory a worker holds, for ``limits.memory_gib``: every process it started, and the
files it wrote to a /tmp or /dev/shm of its own.

A worker's resident set alone misses most of what a runaway submission can hold: the processes
it starts (joblib's and a DataLoader's workers, a subprocess) and its scratch files, which in the
sandbox lie on RAM-backed tmpfs mounts of the worker's own (``benchmark/sandbox/namespaces.py``). So
the figure is the proportional set size (PSS: shared pages split between the processes that map
them, so a forked child's copy of torch is not counted twice) of each process, plus what is used
on those mounts. Linux ``/proc`` only; a process that cannot be read counts 0.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from pathlib import Path

from benchmark.sandbox.namespaces import PRIVATE

GIB_KIB = 2**20


def held_gib(pids: Iterable[int], own_mounts_of: int | None = None) -> float:
    """Memory held by ``pids`` plus, where ``own_mounts_of`` (a worker's pid) has a /tmp and
    /dev/shm of its own, what is stored on them."""
    held = sum(_pss_gib(pid) for pid in pids)
    if own_mounts_of is not None:
        held += sum(_own_tmpfs_gib(own_mounts_of, folder) for folder in PRIVATE)
    return held


def live_processes() -> dict[int, int]:
    """Every live (not zombie) process this ``/proc`` shows, as pid -> session id."""
    live = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended while we looked
        if fields[0] not in "ZX":
            live[int(stat.parent.name)] = int(fields[3])
    return live


def session(worker: int) -> list[int]:
    """The live processes of the session ``worker`` leads (:func:`benchmark.sandbox.worker.serve`
    starts one): it and whatever it started, double-forked daemons included, unless one starts
    a session of its own (in a sandbox the zygote counts and kills every process anyway)."""
    return [pid for pid, sid in live_processes().items() if sid == worker]


def kill_session(worker: int) -> None:
    """SIGKILL every process of ``worker``'s session."""
    for pid in session(worker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _pss_gib(pid: int) -> float:
    """Proportional set size (resident set where the kernel shows no PSS)."""
    for path, field in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(field):
                    return int(line.split()[1]) / GIB_KIB
        except (OSError, ValueError, IndexError):
            continue
    return 0.0


def _own_tmpfs_gib(pid: int, folder: str) -> float:
    """What ``pid`` stored on its ``folder``, if that is a file system of its own (not ours)."""
    theirs = f"/proc/{pid}/root{folder}"
    try:
        if os.stat(theirs).st_dev == os.stat(folder).st_dev:
            return 0.0
        usage = os.statvfs(theirs)
    except OSError:
        return 0.0
    return (usage.f_blocks - usage.f_bfree) * usage.f_frsize / 2**30


__all__ = ["held_gib", "kill_session", "live_processes", "session"]
