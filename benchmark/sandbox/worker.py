"""The worker's side of isolation: build the model, then run the steps its parent sends.

It runs in a process of its own, forked by ``multiprocessing``'s forkserver
(``sandbox=process``) or by the sandbox's server (``benchmark/sandbox/zygote.py``), and imports
neither: the parent's side (``benchmark/sandbox/isolation.py``) starts both, so the worker sits
below them.
"""

from __future__ import annotations

import io
import os
import resource
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from benchmark.api.submission import Submission, SubmissionError, check_fit_signature
from benchmark.sandbox import replies


@dataclass(frozen=True)
class Limits:
    """Per-step limits of a worker (``limits`` in ``conf/config.yaml``); None: no limit."""

    step_s: float | None = None  # wall time of one constructor / fit / save / predict call
    memory_gib: float | None = None  # memory of the worker, its processes and its own /tmp
    processes: int | None = None  # processes and threads of the worker (in the sandbox)

    def __post_init__(self) -> None:
        for name in ("step_s", "memory_gib", "processes"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"limits.{name} must be positive or null, got {value}")


class LimitExceeded(SubmissionError):
    """A worker went past a configured limit and was stopped."""


def build(submission: Mapping[str, Any], seed: int) -> Submission:
    """The model of a resolved ``cfg.model.submission`` node, with the run's seed (both modes)."""
    from hydra.utils import instantiate

    return instantiate(dict(submission), seed=seed, _convert_="all")


def pack_artefacts(model: Submission) -> bytes:
    """``model.save_artefacts`` into a fresh folder of this worker's, as an uncompressed tar
    (links, devices and pipes go in as such: the parent refuses them, :func:`unpack_artefacts`)."""
    with tempfile.TemporaryDirectory(prefix="artefacts-") as folder:
        model.save_artefacts(Path(folder))
        stream = io.BytesIO()
        with tarfile.open(fileobj=stream, mode="w") as tar:
            for path in sorted(Path(folder).rglob("*")):
                tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
        return stream.getvalue()


def serve(
    conn: Connection,
    name: str,
    submission: dict[str, Any],
    seed: int,
    limits: Limits = Limits(),
    sandboxed: bool = False,
) -> None:
    """The worker: build the model, then run the steps the parent sends until it says stop.

    It leads a session of its own, so that its parent finds (counts, kills) what it starts, and
    runs under the kernel's limits (:func:`kernel_limits`) before any submission code."""
    os.setsid()
    kernel_limits(limits, sandboxed)
    model = None
    while True:
        try:
            step, args = conn.recv()
        except EOFError:
            return
        if step == "stop":
            return
        try:
            if model is None:
                model = build(submission, seed)
                check_fit_signature(name, model)
            if step == "tasks":
                value: Any = tuple(model.tasks)
            elif step in ("fit", "prepare"):
                getattr(model, step)(*args)
                value = None
            elif step == "save_artefacts":
                value = pack_artefacts(model)
            else:
                value = getattr(model, step)(*args)
            del args
            replies.send_ok(conn, step, value)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
            replies.send_current_error(conn, _named_limit(exc, name, step, limits, sandboxed))
            if not isinstance(exc, Exception):
                return


def kernel_limits(limits: Limits, sandboxed: bool) -> None:
    """The limits the kernel enforces on this worker, so that they hold even if the parent's
    polling were held up: private memory (``RLIMIT_DATA``: heap and private mappings beyond what
    the worker starts with, per process) and, in the sandbox, where the worker has a user
    namespace of its own, its processes and threads (``RLIMIT_NPROC`` counts those of its user
    there; outside it would count every process of the harness's user on the machine). The
    parent's polling (:meth:`IsolatedSubmission._wait`) still counts what no rlimit sees: every
    process together and the files in the worker's own /tmp."""
    if limits.memory_gib is not None:
        start = _vm_data_bytes()
        cap = start + int(limits.memory_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    if sandboxed and limits.processes is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))


def _vm_data_bytes() -> int:
    """This process's private data (``VmData``): what it inherited from the server."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmData:"):
            return int(line.split()[1]) * 1024
    return 0


def _named_limit(
    exc: BaseException, name: str, step: str, limits: Limits, sandboxed: bool
) -> BaseException:
    """A failure the kernel's limits cause, as a :class:`LimitExceeded` naming the limit."""
    if isinstance(exc, MemoryError) and limits.memory_gib is not None:
        return LimitExceeded(
            f"{name}: {step} went over limits.memory_gib={limits.memory_gib:g} (the kernel "
            "refused it more memory); its worker was stopped and no record is written"
        )
    forked = isinstance(exc, BlockingIOError) or (
        isinstance(exc, RuntimeError) and "can't start new thread" in str(exc)
    )
    if forked and sandboxed and limits.processes is not None:
        return LimitExceeded(
            f"{name}: {step} went over limits.processes={limits.processes} (processes and "
            "threads; the kernel refused one more); its worker was stopped and no record is "
            "written"
        )
    return exc
