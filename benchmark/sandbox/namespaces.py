"""A sandboxed worker's own namespaces: its own processes, /tmp and /dev/shm, and no capability.

All workers of a run fork from one server in one bubblewrap sandbox
(``benchmark/sandbox/zygote.py``), whose /tmp is a single tmpfs: a fold's fit, which gets the labels
of the patients other folds predict, could leave them there for a later fold's predict to read. So
each worker, between the fork and the first line of submission code, enters a user namespace of its
own (with mount, IPC, network and process namespaces), mounts fresh tmpfs on /tmp and /dev/shm and
drops every capability. In a process namespace of its own (:func:`enter` makes it; the worker is the
first process forked in it, its init) the worker cannot name, so cannot signal, the sandbox's server
or the harness: stopping the server would stall the parent's checks of its time and memory. When the
worker ends, the kernel kills whatever it started.

What it inherits stays as the sandbox made it: the kernel locks mounts that come from a more
privileged namespace, so the tmpfs that hides the data cannot be unmounted, nor a read-only
mount made writable. Another worker's ``/proc/<pid>/root`` and memory are closed to it (a
process of another user namespace needs a capability there), and so are its System V shared
memory and message queues and its abstract sockets. Where the host forbids a nested user
namespace the worker refuses to start: sharing /tmp quietly is the hole this closes.

The model's caches, the one writable folder its workers share, are made read-only here too in
every worker but the one that prepares the cohorts and never gets an outcome
(``benchmark/sandbox/isolation.py``): adding a read-only flag is what a locked mount still allows.
"""

from __future__ import annotations

import ctypes
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 0x1, 0x2, 0x4, 0x8, 0x20
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE = 0x400, 0x800, 0x1000, 0x4000, 0x40000
MS_RELATIME = 0x200000
# statvfs flag -> mount flag: a remount must repeat the flags the kernel locked.
_KEPT_FLAGS = {
    os.ST_NOSUID: MS_NOSUID,
    os.ST_NODEV: MS_NODEV,
    os.ST_NOEXEC: MS_NOEXEC,
    os.ST_NOATIME: MS_NOATIME,
    os.ST_NODIRATIME: MS_NODIRATIME,
    os.ST_RELATIME: MS_RELATIME,
}
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
CAPABILITY_VERSION_3 = 0x20080522

PRIVATE = ("/tmp", "/dev/shm")  # a fresh tmpfs each

_libc = ctypes.CDLL(None, use_errno=True)


class NamespaceError(RuntimeError):
    """A worker could not get namespaces of its own, so it does not start."""


def enter(read_only: Sequence[str] = ()) -> None:
    """Give this process (a fresh worker's keeper) its own namespaces, /tmp and /dev/shm, the
    mounts at ``read_only`` read-only; its next child is the first process of a process
    namespace of its own, which calls :func:`become_worker`. Raises :class:`NamespaceError`
    naming the step that failed."""
    try:
        _enter(read_only)
    except OSError as err:  # the steps that _check and _write do not name
        _fail("set up its namespaces", str(err))


def become_worker() -> None:
    """In the keeper's child: die with the keeper and drop every capability."""
    # SIGKILL when the keeper ends (were it killed before this line, the server's next clear-up
    # kills the worker: it sees every process of the sandbox).
    _check(_libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "die with its keeper")
    _drop_capabilities()


def protect_server() -> None:
    """Make this process (the sandbox's server) not dumpable: a worker runs as the same user, and
    could otherwise write the server's memory through ``/proc/<pid>/mem``."""
    _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "make the server not dumpable")


def _enter(read_only: Sequence[str]) -> None:
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID
    _check(_libc.unshare(flags), "unshare a user namespace (nested user namespaces disabled?)")
    _write("/proc/self/setgroups", "deny")  # required before an unprivileged gid_map
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make its mounts private")
    for folder in PRIVATE:
        _fresh_tmpfs(folder)
    for path in read_only:
        kept = os.statvfs(path).f_flag
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        flags |= sum(flag for st, flag in _KEPT_FLAGS.items() if kept & st)
        _check(_libc.mount(None, path.encode(), None, flags, None), f"make {path} read-only")
    os.chdir(os.getcwd())  # the sandbox's /tmp may be the working directory: leave it
    # The server is not dumpable (:func:`protect_server`) and a fork keeps that flag, which would
    # hide the keeper's and its worker's figures (memory, /tmp) from the server. The keeper keeps
    # its capabilities in its own namespace, so its capability-less worker cannot trace it.
    _check(_libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "make its figures readable")


def _fresh_tmpfs(folder: str) -> None:
    """An empty tmpfs on ``folder``; what the sandbox mounted below it (a test's temporary
    folder with the views) is mounted again on top, through a handle opened before."""
    below = _mounts_below(folder)
    handles = [os.open(path, os.O_PATH) for path in below]
    flags = MS_NOSUID | MS_NODEV
    mounted = _libc.mount(b"tmpfs", folder.encode(), b"tmpfs", flags, b"mode=1777")
    _check(mounted, f"mount a tmpfs of its own on {folder}")
    for path, handle in zip(below, handles, strict=True):
        if os.path.isdir(f"/proc/self/fd/{handle}"):
            os.makedirs(path, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Path(path).touch()
        source = f"/proc/self/fd/{handle}".encode()
        _check(_libc.mount(source, path.encode(), None, MS_BIND | MS_REC, None), f"show {path}")
        os.close(handle)


def _mounts_below(folder: str) -> list[str]:
    """The outermost mount points strictly below ``folder`` (``/proc/self/mountinfo``)."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        escaped = line.split()[4]  # octal escapes for spaces and the like
        points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), escaped))
    below = [p for p in dict.fromkeys(points) if p.startswith(folder.rstrip("/") + "/")]
    return [p for p in below if not any(p.startswith(q + "/") for q in below)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint32) for name in ("effective", "permitted", "inheritable")]


def _drop_capabilities() -> None:
    """No capability left, none to regain: in its own user namespace the worker held them all
    (enough to unmount its own /tmp and reach the one the sandbox's processes share)."""
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for cap in range(last + 1):
        _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "drop its bounding capabilities")
    none = (_CapData * 2)()
    header = _CapHeader(CAPABILITY_VERSION_3, 0)
    _check(_libc.capset(ctypes.byref(header), none), "drop its capabilities")


def _check(result: int, step: str) -> None:
    if result != 0:
        _fail(step, os.strerror(ctypes.get_errno()))


def _write(path: str, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as err:
        _fail(f"open {path}", err.strerror or str(err))
    try:
        os.write(fd, text.encode())  # one write: a map is set once
    except OSError as err:
        _fail(f"write {path}", err.strerror or str(err))
    finally:
        os.close(fd)


def _fail(step: str, reason: str) -> NoReturn:
    raise NamespaceError(
        f"sandbox=bwrap: a worker could not {step}: {reason}. Without namespaces of its own a "
        "worker would share /tmp with the run's later workers, so it does not start "
        "(docs/isolation.md)"
    )


__all__ = ["NamespaceError", "become_worker", "enter", "protect_server"]
