"""A fork server inside a sandbox: one per run, it forks a fresh worker per model instance.

Starting a sandboxed interpreter and importing torch costs seconds, and a run builds six model
instances (five folds and the final fit). So the sandbox holds one small server (the zygote)
that imports the heavy modules once and forks a worker for each instance, as
``multiprocessing``'s forkserver does outside a sandbox. The zygote runs no submission code
itself, so each worker starts clean: a fold's worker cannot inherit another fold's state, nor
find it in ``/tmp`` (each worker has one of its own: ``benchmark/sandbox/namespaces.py``) or in a
process an earlier worker left running (the zygote kills those before it forks the next worker).

The zygote lives in the sandbox's own process namespace, where process ids mean nothing to the
parent; so the parent asks the zygote, over a control socket, to start, inspect and stop its
workers. Each worker talks to the parent over a pipe of its own, passed to it through the zygote.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from benchmark.sandbox import namespaces, replies
from benchmark.sandbox.memory import held_gib, kill_session, live_processes
from benchmark.sandbox.worker import serve

MAX_MESSAGE = 1 << 20  # a request carries a model's config: kilobytes
# How long the parent waits for an answer: the first (the server imports the model's libraries)
# and every later one (a spawn first kills what earlier workers left: up to 10 s). A server that
# does not answer in time is stopped with its sandbox, so no worker can stall the parent's checks.
PRELOAD_TIMEOUT_S = 600.0
REQUEST_TIMEOUT_S = 60.0


class ZygoteError(RuntimeError):
    """The sandbox's server could not be started or stopped answering."""


class Zygote:
    """The parent's handle on a sandbox's fork server."""

    def __init__(self, wrap: Any, preload: Sequence[str]) -> None:
        """``wrap(argv) -> argv``: the sandbox command line around the server's own."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # sys.path is set before the first import: the sandbox's environment carries no paths.
        start = (
            f"import sys; sys.path[:] = {list(sys.path)!r}; "
            f"from benchmark.sandbox.zygote import main; main([{theirs.fileno()}])"
        )
        argv = [sys.executable, "-c", start]
        self._socket = ours
        self._lock = threading.Lock()
        self._process = subprocess.Popen(wrap(argv), pass_fds=[theirs.fileno()])
        theirs.close()
        # Not waited for: the server imports while the caller scans the data; the first
        # request reads this answer first.
        self._send("preload", [list(preload)])
        self._unanswered = 1

    def _send(self, op: str, args: Sequence[Any], fd: int | None = None) -> None:
        fds = [] if fd is None else [fd]
        socket.send_fds(self._socket, [pickle.dumps((op, tuple(args)))], fds)

    def request(self, op: str, *args: Any, fd: int | None = None) -> Any:
        """Send one request (with ``fd`` passed along) and return the zygote's answer; a server
        that does not answer in time is stopped with its sandbox (:class:`ZygoteError`)."""
        with self._lock:
            try:
                while self._unanswered:
                    self._socket.settimeout(PRELOAD_TIMEOUT_S)
                    self._answer(self._receive("preload"), "preload")
                    self._unanswered -= 1
                self._socket.settimeout(REQUEST_TIMEOUT_S)
                self._send(op, args, fd)
                answer = self._receive(op)
            except OSError as err:
                raise ZygoteError(f"the sandbox's server is gone ({err})") from None
        return self._answer(answer, op)

    def _receive(self, op: str) -> bytes:
        try:
            return self._socket.recv(MAX_MESSAGE)
        except TimeoutError:
            timeout = self._socket.gettimeout()
            self.kill()
            raise ZygoteError(
                f"the sandbox's server did not answer {op} within {timeout:g} s; the sandbox "
                "and every process in it were stopped"
            ) from None

    def kill(self) -> None:
        """Stop the sandbox now (its first process takes every other one with it)."""
        process = getattr(self, "_process", None)
        if process is not None and process.poll() is None:
            process.kill()

    def _answer(self, answer: bytes, op: str) -> Any:
        if not answer:
            code = self._process.poll()
            raise ZygoteError(f"the sandbox's server ended (exit code {code}) during {op}")
        status, value = pickle.loads(answer)
        if status == "error":
            raise ZygoteError(f"the sandbox's server failed {op}: {value}")
        return value

    def spawn(self, conn: Connection, read_only: Sequence[str], *args: Any) -> ZygoteWorker:
        """A worker running ``benchmark.sandbox.worker.serve(conn, *args)`` in the sandbox, with the
        mounts at ``read_only`` (the model's caches, but in the worker that prepares) read-only."""
        pid = self.request("spawn", list(read_only), *args, fd=conn.fileno())
        return ZygoteWorker(self, pid)

    def close(self) -> None:
        """Stop the server and, with it (the sandbox dies with its first process), every worker."""
        process, self._process = getattr(self, "_process", None), None
        if process is None:
            return
        self._socket.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __del__(self) -> None:
        self.close()


class ZygoteWorker:
    """One worker in a sandbox, seen from the parent (a process id of the sandbox's own)."""

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self._zygote = zygote
        self.pid = pid
        self.exitcode: int | None = None

    def state(self, memory: bool) -> tuple[bool, float | None]:
        """(alive, GiB held if ``memory``: ``benchmark/sandbox/memory.py``), in one request to the
        zygote."""
        if self.exitcode is not None:
            return False, None
        code, held = self._zygote.request("status", self.pid, memory)
        self.exitcode = code
        return code is None, held

    def stop(self, timeout: float = 2.0) -> None:
        """Wait ``timeout`` s for the worker to end by itself, then kill it."""
        if self.exitcode is None:
            with contextlib.suppress(ZygoteError):
                self.exitcode = self._zygote.request("stop", self.pid, timeout)


# --------------------------------------------------------------------------------------------
# Inside the sandbox


class _Server:
    """The zygote's side: answers preload, spawn, status and stop until the parent goes."""

    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.exits: dict[int, int] = {}

    def reap(self, pid: int, block: bool = False) -> int | None:
        if pid in self.exits:
            return self.exits[pid]
        try:
            done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return self.exits.get(pid, -signal.SIGKILL)
        if done == 0:
            return None
        self.exits[pid] = os.waitstatus_to_exitcode(status)
        return self.exits[pid]

    def reap_all(self) -> None:
        """Collect every ended worker's exit code, so that none stays a zombie."""
        with contextlib.suppress(ChildProcessError):
            while (ended := os.waitpid(-1, os.WNOHANG))[0]:
                self.exits[ended[0]] = os.waitstatus_to_exitcode(ended[1])

    def clear(self, timeout: float = 10.0) -> None:
        """Kill every process in the sandbox but bwrap's and this server: the workers of earlier
        model instances and whatever they started (a process a fit leaves running could hand
        its labels to a later fold's worker). So a sandbox runs one worker at a time."""
        deadline = time.monotonic() + timeout
        while others := _other_processes():
            if time.monotonic() > deadline:
                raise ZygoteError(f"processes {others} still run {timeout:g} s after SIGKILL")
            for pid in others:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.reap_all()
            time.sleep(0.01)

    def preload(self, preload: list[str]) -> None:
        for name in preload:
            with contextlib.suppress(Exception):  # the worker reports a failing import itself
                importlib.import_module(name)

    def spawn(self, fds: list[int], read_only: list[str], *args: Any) -> int:
        """Fork a keeper that enters the worker's namespaces and forks the worker, the first
        process of a process namespace of its own (``benchmark/sandbox/namespaces.py``); the keeper
        waits for it and ends with its status. Returns the keeper's pid, the worker's handle
        here."""
        self.clear()
        pid = os.fork()
        if pid == 0:
            _keep(self.control, fds[0], read_only, args)
        os.close(fds[0])
        return pid

    def status(self, pid: int, memory: bool) -> tuple[int | None, float | None]:
        code = self.reap(pid)
        if code is not None or not memory:
            return code, None
        # One worker runs at a time: every other process in the sandbox is it or one it started.
        return code, held_gib(_other_processes(), own_mounts_of=pid)

    def stop(self, pid: int, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while (code := self.reap(pid)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if code is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            code = self.reap(pid, block=True)
        kill_session(pid)  # and what it started (the next worker's start kills any left)
        return code

    def serve_forever(self) -> None:
        while True:
            message, fds, _flags, _addr = socket.recv_fds(self.control, MAX_MESSAGE, 1)
            if not message:
                return  # the parent closed its end: the run is over
            op, args = pickle.loads(message)
            try:
                value = self.spawn(fds, *args) if op == "spawn" else getattr(self, op)(*args)
                answer = ("ok", value)
            except Exception as err:  # noqa: BLE001 - the parent reports it
                answer = ("error", f"{type(err).__name__}: {err}")
            try:
                self.control.send(pickle.dumps(answer))
            except (BrokenPipeError, ConnectionResetError):
                return  # the run ended before its first request (a reused record, bad data)


def _keep(control: socket.socket, fd: int, read_only: list[str], args: tuple[Any, ...]) -> None:
    """The keeper: the worker's namespaces, then the worker, then the worker's status."""
    code = 1
    try:
        control.close()
        conn = Connection(fd)
        try:
            namespaces.enter(read_only)  # before any submission code
        except namespaces.NamespaceError as err:
            replies.send_error(conn, ZygoteError(str(err)))  # the parent's first call raises it
            raise
        worker = os.fork()
        if worker == 0:
            _work(conn, args)
        conn.close()  # the parent sees the pipe close when the worker ends
        _, status = os.waitpid(worker, 0)
        code = os.waitstatus_to_exitcode(status)
        if code < 0:  # killed: end the same way, so that the parent reads the signal
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
    except BaseException:  # noqa: BLE001 - the worker reports failures over its pipe
        code = 1
    finally:
        os._exit(code)


def _work(conn: Connection, args: tuple[Any, ...]) -> None:
    """The worker, process 1 of its own namespace: serve the model until the parent says stop."""
    code = 0
    try:
        namespaces.become_worker()
        serve(conn, *args)
    except BaseException:  # noqa: BLE001 - serve reports failures over its pipe
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _other_processes() -> list[int]:
    """Live processes in the sandbox's process namespace, but bwrap's (1) and this one."""
    return [pid for pid in live_processes() if pid not in (1, os.getpid())]


def main(argv: Sequence[str]) -> None:
    namespaces.protect_server()
    control = socket.socket(fileno=int(argv[0]))
    _Server(control).serve_forever()
