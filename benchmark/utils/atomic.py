"""Atomic file writes: readers (other runs sharing a cache, CI, a crashed run's successor) see the
old file or the new one, never half of one; and folders written all or nothing (``staged``).

The temporary file sits in the target's folder (``os.replace`` is atomic only within one file
system) and gets the permissions a plain ``open`` would give (``0o666`` less the umask), not
``mkstemp``'s ``0o600``: a cache or leaderboard shared by a group must stay readable by it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)
_READ_ONLY_SEEN: set[str] = set()


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once at import (os.umask can only be read by setting it, which is not thread-safe).
_FILE_MODE = 0o666 & ~_current_umask()


def write_atomic(path: Path, content: str | bytes | Callable[[BinaryIO], object]) -> None:
    """Write ``content`` to ``path`` atomically.

    ``content`` is text (UTF-8), bytes, or a function that writes into the binary file it is given
    (``np.savez``, ``torch.save``, ...). On any error the temporary file is removed and ``path``
    is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(content, str):
                handle.write(content.encode("utf-8"))
            elif isinstance(content, bytes | bytearray | memoryview):
                handle.write(content)
            else:
                content(handle)
            handle.flush()
            os.fchmod(handle.fileno(), _FILE_MODE)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_empty(out: Path) -> None:
    """Refuse an ``out`` that holds anything (FileExistsError)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not empty; refusing to overwrite it")


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``out``; on success it becomes ``out``.

    Host, pid and a random part name it, so concurrent writers never share one; on any error it
    is removed and ``out`` is left as it was.
    """
    out = Path(out)
    check_empty(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = out.with_name(f"{out.name}.tmp-{tag}")
    tmp.mkdir()
    try:
        yield tmp
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def unless_read_only(folder: Path) -> Iterator[None]:
    """Run a cache write, or skip it where ``folder`` is on a read-only mount (a sandboxed fit
    reads the caches its run prepared: docs/isolation.md); one warning per folder. The value
    is still computed and used, only not kept."""
    try:
        yield
    except OSError as err:
        if err.errno != errno.EROFS:
            raise
        if str(folder) not in _READ_ONLY_SEEN:
            _READ_ONLY_SEEN.add(str(folder))
            log.warning("cache %s is read-only here: what it misses is computed, not kept", folder)


__all__ = ["check_empty", "staged", "unless_read_only", "write_atomic"]
