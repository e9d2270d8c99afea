"""The blinded view: a folder of links to a cohort's images and masks, and no table.

A submission gets paths into it only, so walking up from an image never reaches the labels;
it is rebuilt atomically whenever the dataset's files change.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

from benchmark.data.layout.names import IMAGES, LESIONS_CSV, MASKS, PATIENTS_CSV


def check_view_dir(root: Path, view_dir: Path) -> None:
    """The view must not lie where walking up from it reaches a table with labels."""
    view, data = view_dir.resolve(), root.resolve()
    if view == data or view.is_relative_to(data):
        raise ValueError(
            f"view_dir {view_dir} lies inside the data root {root}; a submission "
            "could walk up from an image to the labels"
        )
    for folder in (view, *view.parents):
        for table in (PATIENTS_CSV, LESIONS_CSV):
            if (folder / table).exists():
                raise ValueError(
                    f"view_dir {view_dir} lies under {folder / table}; a submission "
                    "could walk up from an image to it"
                )


def _same_file(source: Path, view: Path) -> bool:
    try:
        if os.path.samefile(source, view):
            return True
        a, b = source.stat(), view.stat()
    except OSError:
        return False
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns  # a copy2 of it


def _view_matches(folder: Path, expected: dict[str, Path]) -> bool:
    if not folder.is_dir() or {p.name for p in folder.iterdir()} != {IMAGES, MASKS}:
        return False
    present = {
        f"{sub}/{p.name}"
        for sub in (IMAGES, MASKS)
        if (folder / sub).is_dir()
        for p in (folder / sub).iterdir()
    }
    if present != set(expected):
        return False
    return all(_same_file(source, folder / rel) for rel, source in expected.items())


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def build_view(view_dir: Path, cohort: str, expected: dict[str, Path]) -> Path:
    """``view_dir/<cohort>`` holding exactly ``expected`` (relative name -> source file)."""
    from filelock import FileLock

    view_dir.mkdir(parents=True, exist_ok=True)
    view_dir = view_dir.resolve()
    folder = view_dir / cohort
    with FileLock(str(view_dir / f".{cohort}.lock")):
        if _view_matches(folder, expected):
            return folder
        tmp = Path(tempfile.mkdtemp(prefix=f".{cohort}.tmp-", dir=view_dir))
        old = view_dir / f".{cohort}.old-{uuid.uuid4().hex}"
        try:
            for sub in (IMAGES, MASKS):
                (tmp / sub).mkdir()
            for rel, source in expected.items():
                _link_or_copy(source, tmp / rel)
            if folder.exists() or folder.is_symlink():
                os.replace(folder, old)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
    return folder
