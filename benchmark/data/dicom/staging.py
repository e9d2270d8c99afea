"""A folder written all or nothing: built in a temporary sibling, renamed into place at the end.

Import and export write many files; a crash, a refused patient or Ctrl-C must leave no half
dataset that ``validate`` or a later run could mistake for a whole one.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def check_empty(out: Path) -> None:
    """Refuse an ``out`` that holds anything (FileExistsError)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not empty; refusing to overwrite it")


@contextmanager
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


__all__ = ["check_empty", "staged"]
