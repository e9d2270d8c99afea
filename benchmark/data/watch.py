"""Whether a dataset's files changed while a run read them (a submission wrote to its input).

The run's record carries the fingerprint taken when it started; a submission that can write
to the images (``sandbox=process`` or ``none``: the blinded views are hard links to the data)
could change what that fingerprint stands for, and poison the views later runs read. So the
run takes the status of every file at the start and compares at the end: a write changes a
file's ctime even when the writer puts its mtime back (nobody can set a ctime), so an unchanged
status means unchanged content, without reading a voxel again. Nothing writes to a dataset
while a run reads it, so any change fails the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

Status = tuple[int, int, int, int]  # inode, size, mtime_ns, ctime_ns


def _status(folders: Iterable[Path]) -> dict[str, Status]:
    found: dict[str, Status] = {}
    for folder in folders:
        for dirpath, _dirs, files in os.walk(folder):
            for name in files:
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                found[path] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return found


@dataclass(frozen=True)
class FileWatch:
    """The status of every file under some folders at one moment."""

    folders: tuple[Path, ...]
    status: dict[str, Status]

    @classmethod
    def start(cls, folders: Iterable[Path]) -> FileWatch:
        folders = tuple(Path(f) for f in folders)
        return cls(folders, _status(folders))

    def changed(self) -> list[str]:
        """Files added, removed or written since :meth:`start`, sorted."""
        now = _status(self.folders)
        paths = self.status.keys() | now.keys()
        return sorted(p for p in paths if self.status.get(p) != now.get(p))
