"""Submission code in a process of its own: a fit or a predict sees what the contract allows.

Every model instance the protocol builds lives in a fresh worker process: the constructor,
``fit``, ``save_artefacts`` and ``predict`` run there, and the parent (which holds every
cohort's outcomes and scores the predictions) runs no submission code. A worker receives,
pickled, only the training cohort view and its outcomes (``fit``) or a blinded cohort view
(``predict``); predictions come back as JSON, never a pickle (``benchmark/sandbox/replies.py``), and
are checked by the protocol. Walking up the call stack or scanning live objects in a worker
therefore finds no label of a cohort it predicts, and a model cannot carry labels in memory
from one fold's fit to another fold's predict, because each fit gets a new process. Nor can it
through a file: a fit's artefacts are written into a folder of its worker's own and come back
to the parent as a tar stream, and in a sandbox the model's caches are writable only in the
worker that prepares the cohorts (:meth:`Submission.prepare`), which gets no outcome.

Workers fork from a server that imported the heavy libraries once and never runs submission
code, so a worker starts in milliseconds rather than re-importing torch. ``sandbox=bwrap`` puts
that server, and so every worker, in a bubblewrap sandbox (``benchmark/sandbox/bwrap.py``,
``benchmark/sandbox/zygote.py``) with no label on its file system, no network and no view of other
processes; ``sandbox=process`` uses ``multiprocessing``'s forkserver, started with the cleared
environment a sandbox gets, but shares the machine's files, network and processes
(docs/isolation.md lists what each mode stops).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import multiprocessing
import os
import sys
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from benchmark.api.cohort import Cohort, Outcomes
from benchmark.api.submission import (
    FitContext,
    Predictions,
    Submission,
    SubmissionError,
    refused_artefact,
)
from benchmark.sandbox import bwrap, page_cache, replies
from benchmark.sandbox.memory import held_gib, kill_session, session
from benchmark.sandbox.worker import LimitExceeded, Limits, build, serve
from benchmark.sandbox.zygote import Zygote, ZygoteError

log = logging.getLogger(__name__)

SANDBOXES = ("bwrap", "process", "none")

# Imported once by the forkserver, so that workers do not import them again (with the modules
# of every ``_target_`` in the model's config that are the harness's or an installed library's:
# never a submission's, whose import-time code would run in the server every worker forks from,
# and could leave there, say, a shared memory map a fit writes and a later fold reads).
PRELOAD = ("numpy", "pandas", "hydra.utils", "benchmark.sandbox.worker")
HARNESS_PACKAGES = ("benchmark", "baselines")


POLL_S = 0.25  # how often a waiting parent checks the worker's clock
# ... and its memory: reading a process's PSS walks its page tables (~18 ms for a 1 GiB worker)
MEMORY_POLL_S = 2.0


class Worker(Protocol):
    """A worker process as its parent sees it: in a forkserver, or in a sandbox's zygote."""

    exitcode: int | None

    def state(self, memory: bool) -> tuple[bool, float | None]:
        """(alive, GiB held by it and its processes, ``benchmark/sandbox/memory.py``, if
        ``memory``): one question, as a sandbox's zygote answers it."""
        ...

    def stop(self, timeout: float = 2.0) -> None: ...


class _ForkserverWorker:
    """A worker forked by ``multiprocessing``'s forkserver (``sandbox=process``)."""

    def __init__(
        self, child: Connection, name: str, submission: dict[str, Any], seed: int, limits: Limits
    ):
        context = multiprocessing.get_context("forkserver")
        args = (child, name, submission, seed, limits)
        self._process = context.Process(target=serve, args=args, name=f"model-{name}")
        self._process.start()

    @property
    def exitcode(self) -> int | None:
        return self._process.exitcode

    def state(self, memory: bool) -> tuple[bool, float | None]:
        alive = self._process.is_alive()
        return alive, held_gib(session(self._process.pid)) if alive and memory else None

    def stop(self, timeout: float = 2.0) -> None:
        """Wait ``timeout`` s for the worker to end, then kill it; and kill what it started."""
        self._process.join(timeout=timeout)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        kill_session(self._process.pid)


class IsolatedSubmission(Submission):
    """A submission built and run in a worker process of its own; this object is its handle.

    ``start(conn)`` starts the worker that builds the model and serves its steps over ``conn``
    (:func:`serve`). A step that runs past ``limits`` stops the worker and raises
    :class:`LimitExceeded`, naming model, step and limit.
    """

    tasks: tuple[str, ...]

    def __init__(
        self, name: str, start: Callable[[Connection], Worker], limits: Limits = Limits()
    ) -> None:
        self.name = name
        self.limits = limits
        self._conn, child = multiprocessing.Pipe()
        self._worker: Worker | None = start(child)
        child.close()
        self.tasks = tuple(self._call("tasks"))

    def fit(
        self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()
    ) -> IsolatedSubmission:
        # Without the run's folder: artefacts come back through the pipe, and the folder's
        # name can identify the draw (a fresh draw's run folder is named by its seed).
        self._call("fit", cohort, outcomes, dataclasses.replace(context, artefact_dir=None))
        return self

    def prepare(self, cohort: Cohort) -> None:
        self._call("prepare", cohort)

    def save_artefacts(self, folder: Path) -> None:
        """The worker saves into a folder of its own and sends it back as a tar stream, unpacked
        here: no worker writes where a later one reads."""
        unpack_artefacts(self._call("save_artefacts"), Path(folder))

    def predict(self, cohort: Cohort) -> Predictions:
        return self._call("predict", cohort)

    def _call(self, step: str, *args: Any) -> Any:
        if self._worker is None:
            raise SubmissionError(f"{self.name}: its worker process has been closed")
        try:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                # A worker that ended before it read the step may have said why first (the
                # keeper's ZygoteError): the read below returns that, or reports the end.
                self._conn.send((step, args))
            self._wait(step)
            tasks = max(len(getattr(self, "tasks", ())), 1)
            payload = replies.read(self._conn, _reply_bound(step, args, tasks))
            value = replies.value(self._conn, payload)  # the worker's exception comes as a value
        except (EOFError, ConnectionError, BrokenPipeError, OSError) as err:
            worker = self._worker
            self.close()
            code = None if worker is None else worker.exitcode
            raise SubmissionError(
                f"{self.name}: its worker process ended during {step} (exit code {code}): {err!r}"
            ) from None
        except replies.ReplyError as err:
            self.close()
            raise SubmissionError(
                f"{self.name}: its worker sent, during {step}, {err}; it was stopped and no "
                "record is written"
            ) from None
        if isinstance(value, replies.Raised):  # outside the transport's except: an OSError the
            if isinstance(value.error, LimitExceeded):  # model raised is the model's
                self.close()  # named by the worker: the kernel refused it memory or a process
            raise value.error
        return value

    def _wait(self, step: str) -> None:
        """Block until the worker answers; stop it when it runs past a limit."""
        started = measured = time.monotonic()
        step_s, memory_gib = self.limits.step_s, self.limits.memory_gib
        while not self._conn.poll(POLL_S):
            worker, now = self._worker, time.monotonic()
            measure = memory_gib is not None and now - measured >= MEMORY_POLL_S
            try:
                alive, used = (False, None) if worker is None else worker.state(measure)
            except ZygoteError as err:
                self.close()
                raise SubmissionError(
                    f"{self.name}: during {step}, {err}; no record is written"
                ) from None
            if not alive:
                return  # recv() reports the end
            measured = now if measure else measured
            elapsed = now - started
            if step_s is not None and elapsed > step_s:
                self.close()
                raise LimitExceeded(
                    f"{self.name}: {step} went over limits.step_s={step_s:g} s; its worker was "
                    "stopped and no record is written"
                )
            if memory_gib is not None and used is not None and used > memory_gib:
                self.close()
                raise LimitExceeded(
                    f"{self.name}: {step} went over limits.memory_gib={memory_gib:g} (it held "
                    f"{used:.2f} GiB in its processes and its files in /tmp and /dev/shm); its "
                    "worker was stopped and no record is written"
                )

    def close(self) -> None:
        """Stop the worker (it holds the fitted model): idempotent."""
        worker, self._worker = getattr(self, "_worker", None), None
        if worker is None:
            return
        with contextlib.suppress(OSError, ValueError):
            self._conn.send(("stop", ()))
        self._conn.close()
        worker.stop()

    def __del__(self) -> None:
        self.close()


def _reply_bound(step: str, args: tuple[Any, ...], tasks: int) -> int:
    """The longest reply ``step`` may send: predictions by the predicted cohort's ids."""
    if step == "predict" and args and isinstance(args[0], Cohort):
        cohort = args[0]
        return replies.predictions_bound([*cohort.lesion_ids, *cohort.patient_ids], tasks)
    return replies.MAX_MESSAGE


def unpack_artefacts(data: bytes, folder: Path) -> None:
    """Unpack a worker's artefacts into ``folder``: plain files and folders only, checked
    before anything is written (the worker may send any bytes); tarfile's ``data`` filter
    refuses names that leave ``folder``."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            odd = [m.name for m in tar.getmembers() if not (m.isfile() or m.isdir())]
            if odd:
                raise refused_artefact(odd[0])
            folder.mkdir(parents=True, exist_ok=True)
            tar.extractall(folder, filter="data")
    except tarfile.TarError as err:
        raise SubmissionError(f"artefacts for {folder}: refused ({err})") from None


def resolve_sandbox(requested: str) -> str:
    """The mode a run gets: ``bwrap`` falls back to ``process``, with a warning, where
    bubblewrap is missing or cannot make namespaces (the record says which mode ran)."""
    if requested not in SANDBOXES:
        raise ValueError(f"sandbox must be one of {SANDBOXES}, got {requested!r}")
    if requested == "bwrap" and not bwrap.available():
        log.warning(
            "sandbox=bwrap: bubblewrap is not usable here (Debian package bubblewrap); "
            "running with sandbox=process, which does not wall off files, network or environment"
        )
        return "process"
    return requested


class ModelFactory:
    """``make_model`` for the protocol: ``factory()`` builds a model to fit and predict,
    ``factory.preparer()`` the one that prepares the cohorts (``benchmark/evaluation/protocol.py``);
    they differ in a sandbox only, where the preparer's worker alone may write the model's caches.

    One worker at a time: a new model first ends the previous model's worker, then the host's
    page cache is dropped (``evict``, ``benchmark/sandbox/page_cache.py``), so that which file pages
    one worker read (an earlier fold's fit, or an earlier run's) tells the next one nothing."""

    def __init__(
        self, build: Callable[[bool], Submission], evict: Callable[[], object] | None = None
    ) -> None:
        self._build = build
        self._evict = evict
        self._last: Submission | None = None

    def __call__(self) -> Submission:
        return self._next(False)

    def preparer(self) -> Submission:
        return self._next(True)

    def _next(self, prepares: bool) -> Submission:
        if isinstance(self._last, IsolatedSubmission):
            self._last.close()
        if self._evict is not None:
            self._evict()
        self._last = self._build(prepares)
        return self._last


@contextlib.contextmanager
def isolated_models(
    name: str,
    submission: Mapping[str, Any],
    seed: int,
    sandbox: str,
    limits: Limits = Limits(),
    mounts: bwrap.Mounts | None = None,
) -> Iterator[ModelFactory]:
    """The protocol's models (:class:`ModelFactory`): a fresh one per call, in a worker unless
    ``none`` (where ``limits`` cannot be enforced). ``bwrap`` needs the run's ``mounts``; its
    sandbox (one per run) runs one worker at a time (a new model's worker ends the previous
    one's) and is torn down, with any worker left, when the block ends."""
    sandbox = resolve_sandbox(sandbox)
    submission = dict(submission)
    if sandbox == "none":
        yield ModelFactory(lambda _prepares: build(submission, seed))
        return
    preload = [*PRELOAD, *filter(preloadable, _target_modules(submission))]
    if sandbox == "process":
        from multiprocessing import forkserver

        multiprocessing.get_context("forkserver").set_forkserver_preload(preload)
        # Start the server now (it imports while the caller scans and loads the data), with the
        # environment a sandbox would get: its workers inherit no path to the data.
        with _environment(bwrap.worker_env()):
            forkserver.ensure_running()
        yield ModelFactory(
            lambda _prepares: IsolatedSubmission(
                name, lambda conn: _ForkserverWorker(conn, name, submission, seed, limits), limits
            ),
            lambda: page_cache.evict(),
        )
        return
    if mounts is None:
        raise ValueError("sandbox=bwrap needs the run's mounts (benchmark.sandbox.bwrap.Mounts)")
    zygote = Zygote(lambda argv: bwrap.command(mounts, argv), preload)
    caches = [str(path) for path in mounts.writable]

    def start(prepares: bool) -> IsolatedSubmission:
        read_only = [] if prepares else caches
        return IsolatedSubmission(
            name,
            lambda conn: zygote.spawn(conn, read_only, name, submission, seed, limits, True),
            limits,
        )

    try:
        yield ModelFactory(start, lambda: page_cache.evict())
    finally:
        zygote.close()


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` is ``env`` inside the block, and what it was after."""

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def preloadable(module: str) -> bool:
    """Whether the server may import ``module``: the harness's own code or an installed library
    (located on ``sys.path`` without importing anything: a dotted name's parents would run)."""
    import importlib.machinery
    import sysconfig

    top = module.split(".")[0]
    if top in HARNESS_PACKAGES or top in sys.builtin_module_names:
        return True
    try:
        spec = importlib.machinery.PathFinder.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        return spec is not None
    libraries = {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib", "platstdlib")}
    origin = Path(spec.origin).resolve()
    return any(Path(root).resolve() in origin.parents for root in libraries)


def _target_modules(node: Any) -> list[str]:
    """The modules of every ``_target_`` in a config node (what instantiating it imports)."""
    found: list[str] = []
    if isinstance(node, Mapping):
        target = node.get("_target_")
        if isinstance(target, str) and "." in target:
            found.append(target.rsplit(".", 1)[0])
        for value in node.values():
            found += _target_modules(value)
    elif isinstance(node, list | tuple):
        for value in node:
            found += _target_modules(value)
    return list(dict.fromkeys(found))


__all__ = [
    "SANDBOXES",
    "IsolatedSubmission",
    "LimitExceeded",
    "Limits",
    "ModelFactory",
    "isolated_models",
    "resolve_sandbox",
    "serve",
]
