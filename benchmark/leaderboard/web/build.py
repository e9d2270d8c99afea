"""``python -m benchmark.leaderboard site OUT``: the web board as a folder of static files.

Every script and style the pages load is in ``OUT/assets/`` (plotly.js is vendored, pinned by
its hash), so the site works opened as ``file://`` or from any static host, and asks no other
host for anything. The same inputs give the same bytes: the only date on the site is the
commit's (or ``SOURCE_DATE_EPOCH``'s), and ``OUT/site.json`` lists every file with its hash.
``OUT`` is replaced as a whole, and only if it holds a site this command built.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmark.leaderboard.board import Board, Paths, load_board
from benchmark.leaderboard.web.pages import BuildInfo
from benchmark.leaderboard.web.render import render_site
from benchmark.records.reading import Reference
from benchmark.records.record_format import PROJECT_ROOT, git_commit
from benchmark.utils.atomic import staged, write_atomic

ASSETS = Path(__file__).with_name("assets")
# plotly.js-cartesian-dist-min 4.1.1 from npm (MIT), its file as the package ships it.
PLOTLY = "vendor/plotly-cartesian-4.1.1.min.js"
PLOTLY_SHA256 = "79542150855a52c567260e3137095dbe2b744e6d702a5cabe67da246942fba7a"
MANIFEST = "site.json"
GENERATOR = "nsclc-io-bench leaderboard site"


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_info(board: Board, root: Path = PROJECT_ROOT) -> BuildInfo:
    """The checkout's commit and a date that does not depend on when the build ran:
    ``SOURCE_DATE_EPOCH`` (the reproducible-builds convention) if set, else the commit's date,
    else the latest record's start."""
    commit = git_commit()
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return BuildInfo(commit, _iso(int(epoch)))
    try:
        found = subprocess.run(
            ["git", "log", "-1", "--format=%ct", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return BuildInfo(commit, _iso(int(found)))
    except (OSError, ValueError, subprocess.CalledProcessError):
        started = sorted(str(e.record["provenance"].get("started_at", "")) for e in board.entries)
        return BuildInfo(commit, started[-1] if started else "unknown")


def asset_files() -> dict[str, bytes]:
    """``assets/...`` -> bytes; ValueError if the vendored plotly.js is not the pinned file."""
    files = {
        "assets/" + path.relative_to(ASSETS).as_posix(): path.read_bytes()
        for path in sorted(ASSETS.rglob("*"))
        if path.is_file()
    }
    plotly = files.get("assets/" + PLOTLY, b"")
    if hashlib.sha256(plotly).hexdigest() != PLOTLY_SHA256:
        raise ValueError(f"{ASSETS / PLOTLY} is not the pinned plotly.js (sha256 differs)")
    return files


def site_files(
    board: Board,
    info: BuildInfo,
    calibration: Mapping[str, Any] | None = None,
    coverage: Mapping[str, Any] | None = None,
) -> dict[str, bytes]:
    """Every file of the site, relative path -> bytes, the manifest last."""
    pages = render_site(board, info, calibration, coverage)
    files = {path: html.encode("utf-8") for path, html in pages.items()}
    files.update(asset_files())
    manifest = {
        "generator": GENERATOR,
        "commit": info.commit,
        "date": info.date,
        "files": {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())},
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2) + "\n").encode()
    return files


def is_site(folder: Path) -> bool:
    """Whether ``folder`` holds a site this command built (its manifest says so)."""
    try:
        return json.loads((folder / MANIFEST).read_text())["generator"] == GENERATOR
    except (OSError, ValueError, KeyError, TypeError):
        return False


def check_out(out: Path) -> None:
    """FileExistsError unless ``out`` is missing, empty, or a site this command built."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not is_site(out):
        raise FileExistsError(f"{out} is not empty and holds no site built by this command")


def write_site(files: Mapping[str, bytes], out: Path) -> None:
    """Write ``files`` into ``out`` all or nothing, replacing a site built there before;
    FileExistsError if ``out`` holds anything else."""
    out = Path(out)
    check_out(out)
    tag = uuid.uuid4().hex[:8]
    fresh = out.with_name(f".{out.name}.new-{tag}")
    with staged(fresh) as folder:
        for path, data in files.items():
            write_atomic(folder / path, data)
    if out.exists():
        old = out.with_name(f".{out.name}.old-{tag}")
        os.replace(out, old)
        os.replace(fresh, out)
        shutil.rmtree(old)
    else:
        os.replace(fresh, out)


def _json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def build_site(paths: Paths, reference: Reference, out: Path) -> dict[str, int]:
    """Load the board from ``paths``, write its site into ``out``; file count and bytes."""
    check_out(out)  # before the minutes of ranking, not after
    board = load_board(paths, reference)
    calibration = _json(paths.calibration / "calibration.json")
    coverage = _json(paths.calibration / "coverage.json")
    files = site_files(board, build_info(board), calibration, coverage)
    write_site(files, out)
    return {"files": len(files), "bytes": sum(len(data) for data in files.values())}
