"""The bubblewrap command line that walls a submission's worker processes off the host.

A sandbox sees a read-only file system made of what running Python needs (the system
directories, the interpreter, every ``sys.path`` entry: the project's code and the virtual
environment) minus what could carry a label: the data root with its tables and ``truth/``, the
cache folder that holds simulated datasets, the leaderboard, run and sweep folders (their
predictions files carry outcomes) and ``.git`` (the leaderboard's history), each under an empty
read-only tmpfs. Back on top come, read-only, the blinded image views and the harness's feature
folders, and, writable, the model's own folder (``<cache>/submissions/<name>``,
``benchmark/sandbox/writable.py``), which each worker but the one preparing the cohorts makes
read-only for itself; everything else,
``/dev`` included, is read-only, and each worker mounts a ``/tmp`` and ``/dev/shm`` of its own
(``benchmark/sandbox/namespaces.py``). A fit's artefacts come back through a pipe, not a mount.
``/proc`` shows only the sandbox's processes, the network is private (loopback only, down),
and the environment is cleared except for settings that change numerics or threading.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

NOBODY = 65534  # the sandbox's uid where the harness runs as root
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/opt", "/sys")
# Environment variables a worker keeps: numerics, threads, devices, locale. Paths do not pass.
KEPT_ENV = re.compile(
    r"^(OMP_|MKL_|OPENBLAS_|ONEDNN_|DNNL_|ATEN_|CUDA_|CUBLAS_|NVIDIA_|PYTHONHASHSEED$"
    r"|LANG$|LC_|TZ$|TERM$|COLUMNS$|NO_COLOR$)"
)


@functools.cache
def available() -> bool:
    """Whether ``bwrap`` is installed and can make namespaces here (a container may forbid it)."""
    exe = shutil.which("bwrap")
    if exe is None:
        return False
    probe = [exe, "--ro-bind", "/", "/", "--unshare-all", "--cap-drop", "ALL"]
    probe += ["--proc", "/proc", "--", "/bin/true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@dataclass(frozen=True)
class Mounts:
    """What one run's sandbox hides, shows read-only and lets the submission write."""

    hidden: tuple[Path, ...] = ()
    read_only: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()
    devices: tuple[Path, ...] = field(default_factory=lambda: _gpu_devices())

    @classmethod
    def for_run(
        cls,
        *,
        cache_dir: Path,
        data_root: Path | None,
        views: Path,
        submission_cache: Path | None,
        project_root: Path,
        runs: Iterable[Path] = (),
        harness_caches: Iterable[Path] = (),
    ) -> Mounts:
        """The mounts of a run: the cache and data hidden, views and the model's own folder
        (``benchmark/sandbox/writable.py``) shown, the harness's own cache folders
        (``benchmark/runner/harness_caches.py``) read-only.

        The model's folder may not hold, or lie in, what the sandbox hides (the whole cache
        folder, the data, runs, the leaderboard) nor the harness's data folders in the cache
        (datasets, views, the scan cache): a config naming one is refused here, naming it.
        """
        in_project = [project_root / name for name in ("leaderboard", ".git", ".cache")]
        cache = Path(cache_dir).expanduser().resolve()
        hidden = _resolved([cache, *in_project, *runs, *([data_root] if data_root else [])])
        harness_data = _resolved([cache / "data", *cache.glob("layout-*"), views])
        off_limits = [h for h in hidden if h != cache] + list(harness_data)
        writable = _resolved([submission_cache] if submission_cache is not None else [])
        for path in writable:
            clash = [h for h in hidden if _under(h, path)]
            clash += [h for h in off_limits if _under(path, h)]
            if clash:
                raise ValueError(
                    f"the model's folder {path} would show {clash[0]} to its sandbox, "
                    "which holds labels or the harness's data; it must be "
                    "<cache>/submissions/<name> (paths.submission_cache)"
                )
        return cls(hidden=hidden, read_only=_resolved([views, *harness_caches]), writable=writable)


def _resolved(paths: Iterable[Path]) -> tuple[Path, ...]:
    return tuple(dict.fromkeys(Path(p).expanduser().resolve() for p in paths))


def _gpu_devices() -> tuple[Path, ...]:
    return tuple(sorted(Path("/dev").glob("nvidia*")))


def command(mounts: Mounts, argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """``bwrap [options] -- argv``: argv run inside the sandbox ``mounts`` describe.

    Folders to show or write are created first (a bind needs its source); hidden folders are
    covered by an empty tmpfs, so whatever lies below them is gone unless shown again.
    """
    exe = shutil.which("bwrap")
    if exe is None:
        raise FileNotFoundError("bwrap (Debian package bubblewrap) is not installed")
    # No capability, not even in the sandbox's own user namespace: with CAP_SYS_ADMIN there, a
    # worker could unmount the tmpfs over a hidden folder and read what lies below.
    args = [exe, "--unshare-all", "--cap-drop", "ALL", "--die-with-parent", "--new-session"]
    if os.getuid() == 0:
        # Each worker maps the sandbox's uid into a user namespace of its own (to get a /tmp of
        # its own: benchmark/sandbox/namespaces.py); Linux refuses a map of uid 0 without
        # CAP_SETFCAP.
        args += ["--uid", str(NOBODY)]
    # /tmp and /dev/shm are writable for the server only (each worker mounts its own): joblib,
    # imported there, needs a writable /dev/shm for its semaphores or falls back to serial.
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm", "--tmpfs", "/tmp"]
    for path in _visible_roots():
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        else:
            args += ["--ro-bind", str(path), str(path)]
    for device in mounts.devices:
        args += ["--dev-bind", str(device), str(device)]
    # Parents before children, so that a folder shown inside a hidden one (the views inside
    # the cache) is mounted on top of the tmpfs that hides its parent, and never the reverse.
    # Every folder is made first: one hidden that does not exist yet (the cache of a fresh
    # clone) would otherwise not be covered, and fill up, seen through its visible parent,
    # once the run writes the data into it.
    for path in (*mounts.hidden, *mounts.read_only, *mounts.writable):
        if not path.exists():
            path.mkdir(parents=True, exist_ok=True)
    layers: list[tuple[Path, list[str]]] = []
    covered = [path for path in mounts.hidden if path.is_dir()]
    layers += [(path, ["--tmpfs", str(path)]) for path in covered]
    for path in mounts.hidden:
        if not path.is_dir():  # a file: a git worktree's `.git`
            layers.append((path, ["--ro-bind", "/dev/null", str(path)]))
    for option, paths in (("--ro-bind", mounts.read_only), ("--bind", mounts.writable)):
        layers += [(path, [option, str(path), str(path)]) for path in paths]
    for _path, layer in sorted(layers, key=lambda layer: len(layer[0].parts)):
        args += layer
    # The root bwrap builds, /dev and the tmpfs over hidden folders are shared by every worker,
    # a way from one fold's fit to a later fold: read-only.
    args += ["--remount-ro", "/dev", "--remount-ro", "/"]
    for path in covered:
        args += ["--remount-ro", str(path)]
    cwd = Path.cwd()
    visible = [*_visible_roots(), *mounts.read_only, *mounts.writable]
    shown = any(_under(cwd, p) for p in visible) and not any(_under(cwd, p) for p in mounts.hidden)
    args += ["--chdir", str(cwd) if shown else "/tmp", "--clearenv"]
    for name, value in sorted(worker_env(env).items()):
        args += ["--setenv", name, value]
    return [*args, "--", *argv]


def worker_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a sandboxed worker gets: numerics and locale settings, no paths."""
    env = os.environ if env is None else env
    kept = {k: v for k, v in env.items() if KEPT_ENV.match(k)}
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", **kept}


def _visible_roots() -> list[Path]:
    """System directories, the interpreter's prefixes and every existing ``sys.path`` entry."""
    roots = [Path(d) for d in SYSTEM_DIRS if Path(d).exists()]
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path]
    for entry in candidates:
        path = Path(entry or ".").resolve()
        if path.exists() and not any(_under(path, r) for r in roots):
            roots = [r for r in roots if not _under(r, path)] + [path]
    return roots


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


__all__ = ["Mounts", "available", "command", "worker_env"]
