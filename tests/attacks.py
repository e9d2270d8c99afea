"""Hostile submissions for tests/test_isolation.py: each tries to read the labels of the cohort
it predicts from the process it runs in. Importable by a worker process (tests/ is on its path).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

from benchmark.cohort import Cohort, Outcomes
from benchmark.submission import FitContext, Predictions, Submission


def _labels_for(candidates, cohort: Cohort) -> pd.Series | None:
    """The PD labels of ``cohort``'s lesions from the first Outcomes that covers all of them."""
    wanted = set(cohort.lesion_ids)
    for obj in candidates:
        if isinstance(obj, Outcomes) and wanted <= set(obj.lesion_pd.index):
            return obj.lesion_pd.loc[cohort.lesion_ids].astype(float)
    return None


class _Cheat(Submission):
    tasks = ("lesion_pd",)

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()):
        return self

    def found(self, cohort: Cohort) -> pd.Series | None:
        raise NotImplementedError

    def predict(self, cohort: Cohort) -> Predictions:
        labels = self.found(cohort)
        if labels is None:  # nothing found: a constant, i.e. chance
            labels = pd.Series(0.5, index=cohort.lesion_ids)
        return {"lesion_pd": labels}


class StackWalker(_Cheat):
    """(a) Walks up the call stack and looks in every frame's locals."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        frame, seen = sys._getframe(), []
        while frame is not None:
            for value in list(frame.f_locals.values()):
                seen.append(value)
                seen.extend(getattr(value, "__dict__", {}).values())
                if isinstance(value, dict):
                    seen.extend(value.values())
                    seen.extend(getattr(v, "outcomes", None) for v in value.values())
            frame = frame.f_back
        return _labels_for(seen, cohort)


class ObjectScanner(_Cheat):
    """(b) Scans every object the garbage collector tracks."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        with warnings.catch_warnings():  # isinstance() on every object wakes deprecated shims
            warnings.simplefilter("ignore")
            return _labels_for(gc.get_objects(), cohort)


class Crashes(_Cheat):
    """Ends its own process in predict (a segfault looks the same to the harness)."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        os._exit(3)


class Raises(_Cheat):
    def found(self, cohort: Cohort) -> pd.Series | None:
        raise KeyError("a bug in the submission")


_HOARD: dict[str, float] = {}  # module state: lives as long as the process


class Hoarder(_Cheat):
    """Keeps every label it is trained on, for the folds it will predict later."""

    def fit(self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()):
        _HOARD.update(outcomes.lesion_pd.astype(float).to_dict())
        return self

    def found(self, cohort: Cohort) -> pd.Series | None:
        if not all(lesion in _HOARD for lesion in cohort.lesion_ids):
            return None
        return pd.Series([_HOARD[lesion] for lesion in cohort.lesion_ids], index=cohort.lesion_ids)


class Sleeper(_Cheat):
    """A runaway predict: never returns in time."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        import time

        time.sleep(120)


class Hog(_Cheat):
    """A runaway predict: holds ~1 GiB."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        import time

        import numpy as np

        block = np.ones(2**27)  # 1 GiB of float64, touched
        time.sleep(30)
        return pd.Series(float(block[0]) / 2, index=cohort.lesion_ids)


CHILD_MARK = "nsclc-io-bench-child-hog"  # in the child's command line, for the test to find it


class ChildHog(_Cheat):
    """A runaway predict whose memory is in a process it starts: ~1 GiB there, none in itself."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        hold = f"block = b'x' * 2**30; import time; time.sleep(60)  # {CHILD_MARK}"
        subprocess.Popen([sys.executable, "-c", hold])
        time.sleep(30)


class TmpHog(_Cheat):
    """A runaway predict whose memory is files: ~1 GiB in its /tmp (RAM in the sandbox)."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        with open(Path(tempfile.gettempdir()) / "scratch", "wb") as scratch:
            for _ in range(64):
                scratch.write(b"x" * 2**24)
        time.sleep(30)


def _labels_from_tables(tables, cohort: Cohort) -> pd.Series | None:
    """The PD labels of ``cohort``'s lesions from the first lesions.csv that holds them."""
    wanted = set(cohort.lesion_ids)
    for table in tables:
        try:
            frame = pd.read_csv(table).set_index("lesion_id")
        except (OSError, ValueError, KeyError):
            continue
        if "pd" in frame.columns and wanted <= set(frame.index):
            return frame.loc[cohort.lesion_ids, "pd"].astype(float)
    return None


def _search(folder: str, depth: int = 5) -> list[str]:
    """Every lesions.csv under ``folder``, at most ``depth`` levels down (no /proc, /sys)."""
    found = []
    top = folder.rstrip("/").count("/")
    for dirpath, dirs, files in os.walk(folder):
        if dirpath.startswith(("/proc", "/sys", "/dev")) or dirpath.count("/") - top >= depth:
            dirs.clear()
            continue
        found += [os.path.join(dirpath, f) for f in files if f == "lesions.csv"]
    return found


class FileSearcher(_Cheat):
    """(c) Walks up from its input images towards / and searches each folder for label tables."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        start = Path(next(iter(cohort.images.values())))
        for folder in start.parents:
            labels = _labels_from_tables(_search(str(folder)), cohort)
            if labels is not None:
                return labels
        return None


class ImageWriter(_Cheat):
    """(d) Writes into one of its input images (and puts the modification time back)."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        path = Path(next(iter(cohort.images.values())))
        stat = path.stat()
        try:
            with path.open("r+b") as handle:
                handle.seek(-1, os.SEEK_END)
                last = handle.read(1)
                handle.seek(-1, os.SEEK_END)
                handle.write(bytes([last[0] ^ 0xFF]))
        except OSError:
            return None  # read-only: nothing written
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        return None


class NetworkCaller(_Cheat):
    """(e) Opens a connection to ``host:port`` (an accomplice, here the test) and says hello."""

    def __init__(self, seed: int = 0, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(seed)
        self.host, self.port = host, port

    def found(self, cohort: Cohort) -> pd.Series | None:
        import socket

        try:
            with socket.create_connection((self.host, self.port), timeout=5) as conn:
                conn.sendall(b"labels please")
        except OSError:
            pass
        return None


class EnvironmentReader(_Cheat):
    """(f) Reads its own environment and every visible process's for folders holding labels."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        values = list(os.environ.values())
        for environ in Path("/proc").glob("[0-9]*/environ"):
            try:
                values += [v.split("=", 1)[-1] for v in environ.read_bytes().decode().split("\0")]
            except (OSError, UnicodeDecodeError):
                continue
        for value in values:
            if value.startswith("/") and os.path.isdir(value):
                labels = _labels_from_tables(_search(value), cohort)
                if labels is not None:
                    return labels
        return None


class Unmounter(FileSearcher):
    """(c') Unmounts the tmpfs a sandbox lays over a folder above its inputs, then searches."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        image = Path(next(iter(cohort.images.values())))
        for line in Path("/proc/self/mounts").read_text().splitlines():
            _device, target, kind, *_ = line.split()
            if kind == "tmpfs" and Path(target) in image.parents and target.count("/") > 1:
                libc.umount2(target.encode(), 2)  # MNT_DETACH: with what is mounted below
        return super().found(cohort)


CARRIED = "nsclc-carried"  # the name of what TmpCarrier and Lingerer leave behind


def shared_folders() -> list[str]:
    """Where a worker might write what a later worker reads: the temporary folders ($TMPDIR,
    ``tempfile``'s) and the other tmpfs a sandbox shows (``/dev/shm``, ``/dev``, its root)."""
    folders = ["/tmp", os.environ.get("TMPDIR") or "/tmp", tempfile.gettempdir()]
    return list(dict.fromkeys([*folders, "/dev/shm", "/dev", "/"]))


def _carried(folders, prefix: str) -> dict[str, float]:
    """The labels in every ``<prefix>*.json`` a carrier left in ``folders`` it can read."""
    labels: dict[str, float] = {}
    for folder in folders:
        with contextlib.suppress(OSError):
            for path in Path(folder).glob(f"{prefix}*.json"):
                with contextlib.suppress(OSError, ValueError):
                    labels.update(json.loads(path.read_text()))
    return labels


def _known(cohort: Cohort, labels: dict[str, float]) -> pd.Series | None:
    if not all(lesion in labels for lesion in cohort.lesion_ids):
        return None
    return pd.Series([labels[lesion] for lesion in cohort.lesion_ids], index=cohort.lesion_ids)


class TmpCarrier(_Cheat):
    """(g) Leaves the labels its fit gets in every shared folder it can write, also as seen by
    its parent and by process 1 (``/proc/<pid>/root``), for a later fold's worker to read back
    (through any process's root). ``tag`` keeps one test's files apart from another's."""

    def __init__(self, seed: int = 0, tag: str = "") -> None:
        super().__init__(seed)
        self.prefix = f"{CARRIED}-{tag}-"
        self.labels: dict[str, float] = {}

    def fit(self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()):
        self.labels.update(self._read())
        text = json.dumps(outcomes.lesion_pd.astype(float).to_dict())
        name = f"{self.prefix}{os.getpid()}-{time.time_ns()}.json"
        for root in ("/", "/proc/1/root", f"/proc/{os.getppid()}/root"):
            for folder in shared_folders():
                with contextlib.suppress(OSError):
                    Path(root, folder.lstrip("/"), name).write_text(text)
        return self

    def _read(self) -> dict[str, float]:
        roots = [Path("/"), *Path("/proc").glob("[0-9]*/root")]
        folders = [root / f.lstrip("/") for root in roots for f in shared_folders()]
        return _carried(folders, self.prefix)

    def found(self, cohort: Cohort) -> pd.Series | None:
        self.labels.update(self._read())
        return _known(cohort, self.labels)


def mount_points() -> list[str]:
    """Every mount point this process sees (``/proc/self/mountinfo``), but /proc and /sys."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if not point.startswith(("/proc", "/sys")):
            points.append(point)
    return list(dict.fromkeys(points))


class MountCarrier(_Cheat):
    """(i) Leaves the labels its fit gets wherever it can write: every mount point it sees (the
    tmpfs over hidden folders among them), its declared ``cache_dir`` and the run's artefact
    folders (its own and the other fits'), for a later fold's predict to read back."""

    def __init__(self, cache_dir: str, seed: int = 0, tag: str = "") -> None:
        super().__init__(seed)
        self.cache_dir, self.prefix = cache_dir, f"{CARRIED}-{tag}-"
        self.labels: dict[str, float] = {}
        self.artefacts: Path | None = None

    def _folders(self) -> list[Path]:
        folders = [Path(p) for p in mount_points()] + [Path(self.cache_dir)]
        if self.artefacts is not None:  # every fit's folder: fold0, ..., final
            folders += [self.artefacts.parent, *self.artefacts.parent.glob("*")]
        return folders

    def fit(self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()):
        self.artefacts = context.artefact_dir
        self.labels.update(self._read())
        self.text = json.dumps(outcomes.lesion_pd.astype(float).to_dict())
        name = f"{self.prefix}{os.getpid()}-{time.time_ns()}.json"
        for folder in self._folders():
            with contextlib.suppress(OSError):
                (folder / name).write_text(self.text)
        return self

    def prepare(self, cohort: Cohort) -> None:
        """No outcome here, so nothing to carry: mark that this worker could write its cache."""
        (Path(self.cache_dir) / f"{self.prefix}prepared").touch()

    def save_artefacts(self, folder: Path) -> None:
        for where in (folder, folder.parent):
            with contextlib.suppress(OSError):
                (where / f"{self.prefix}{time.time_ns()}.json").write_text(self.text)

    def _read(self) -> dict[str, float]:
        return _carried(self._folders(), self.prefix)

    def found(self, cohort: Cohort) -> pd.Series | None:
        self.labels.update(self._read())
        return _known(cohort, self.labels)


class Poisoner(_Cheat):
    """(k) Overwrites, while it prepares, the entries of a cache other models read (the
    harness's radiomics), and adds one, to hand them wrong features; keeps one of its own."""

    def __init__(self, cache_dir: str, shared_dir: str, seed: int = 0) -> None:
        super().__init__(seed)
        self.cache_dir, self.shared_dir = Path(cache_dir), Path(shared_dir)

    def prepare(self, cohort: Cohort) -> None:
        for path in [*self.shared_dir.glob("*.json"), self.shared_dir / "added.json"]:
            with contextlib.suppress(OSError):
                path.write_text('{"poisoned": true}')
        (self.cache_dir / "own.json").write_text("{}")

    def found(self, cohort: Cohort) -> pd.Series | None:
        return None


def parent_side_predictions() -> dict[str, pd.Series]:
    """Run by the harness's process if it unpickles what ReplyForger wrote: the labels of the
    cohort it is waiting predictions for, found up its own call stack."""
    frame = sys._getframe()
    while frame is not None and not isinstance(frame.f_locals.get("cohort"), Cohort):
        frame = frame.f_back
    cohort = frame.f_locals["cohort"]
    labels = StackWalker().found(cohort)
    return {"lesion_pd": labels if labels is not None else pd.Series(0.5, cohort.lesion_ids)}


class _RunsInTheReader:
    def __reduce__(self):
        return eval, ("__import__('attacks').parent_side_predictions()",)


class ReplyForger(_Cheat):
    """(j) Writes its own pickle on the pipe its worker answers on: a parent that unpickles
    replies runs the code the pickle names, and that code finds the labels in the parent."""

    def predict(self, cohort: Cohort) -> Predictions:
        frame = sys._getframe()
        while frame.f_code.co_name != "serve":
            frame = frame.f_back
        frame.f_locals["conn"].send(("ok", _RunsInTheReader()))
        os._exit(0)


class Lingerer(_Cheat):
    """(h) Leaves behind a process whose command line carries the labels its fit got (any
    process may read another's ``/proc/<pid>/cmdline``), for a later fold's worker to read."""

    def __init__(self, seed: int = 0, tag: str = "", linger_s: float = 60.0) -> None:
        super().__init__(seed)
        self.marker, self.linger_s = f"{CARRIED}-{tag}", linger_s

    def fit(self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()):
        text = json.dumps(outcomes.lesion_pd.astype(float).to_dict())
        sleep = f"import time; time.sleep({self.linger_s})"
        subprocess.Popen(
            [sys.executable, "-c", sleep, self.marker, text],
            start_new_session=True,  # not stopped with the worker's process group
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def found(self, cohort: Cohort) -> pd.Series | None:
        labels: dict[str, float] = {}
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            with contextlib.suppress(OSError, ValueError):
                args = cmdline.read_bytes().decode().split("\0")
                if self.marker in args:
                    labels.update(json.loads(args[args.index(self.marker) + 1]))
        return _known(cohort, labels)


class Inspector(_Cheat):
    """Fails its predict with a report of its worker's capabilities (``/proc/self/status``)."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        status = [line.split(":\t") for line in Path("/proc/self/status").read_text().splitlines()]
        raise RuntimeError(json.dumps({k: v for k, v in status if k.startswith(("Cap", "NoNew"))}))
