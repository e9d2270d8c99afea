"""Hostile submissions for tests/sandbox/test_isolation.py: each tries to read the labels of the
cohort it predicts from the process it runs in. Importable by a worker process (tests/ is on its
path).
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

from benchmark.api.cohort import Cohort, Outcomes
from benchmark.api.submission import FitContext, Predictions, Submission


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


class RaisesOSError(_Cheat):
    """A model's own OSError: its error, not the worker's end."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        raise FileNotFoundError(2, "a bug in the submission", "weights.pt")


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
    """A runaway predict whose memory is in processes it starts: three of ~0.3 GiB, each under
    any per-process limit, none in itself."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        hold = f"block = b'x' * (300 * 2**20); import time; time.sleep(60)  # {CHILD_MARK}"
        for _ in range(3):
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


def _other_pids() -> list[int]:
    """Every process this one's /proc shows but itself: its number there, and its number for
    ``kill`` (they differ when /proc belongs to an outer process namespace)."""
    me = {int(os.readlink("/proc/self")), os.getpid()}
    return sorted(int(p.name) for p in Path("/proc").glob("[0-9]*") if int(p.name) not in me)


class Signaller(_Cheat):
    """(l) Finds which processes it could stop (signal 0 asks the kernel without sending) and
    whose memory it could write (``/proc/<pid>/mem``), and fails its predict with the list."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        reach: dict[str, list[int]] = {"signal": [], "memory": []}
        for pid in _other_pids():
            with contextlib.suppress(OSError):
                os.kill(pid, 0)
                reach["signal"].append(pid)
            with contextlib.suppress(OSError), open(f"/proc/{pid}/mem", "r+b"):
                reach["memory"].append(pid)
        raise RuntimeError(json.dumps(reach))


class Staller(_Cheat):
    """(l') Stops every process it sees (the sandbox's server among them, where it can), so that
    its parent's checks of time and memory would wait on a stopped server; then holds ~1.5 GiB in
    its /tmp and sleeps."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        import signal

        for pid in _other_pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)
        with open(Path(tempfile.gettempdir()) / "scratch", "wb") as scratch:
            for _ in range(96):
                scratch.write(b"x" * 2**24)
        time.sleep(60)


class ThreadBomb(_Cheat):
    """Starts threads until the kernel refuses one."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        import threading

        for _ in range(100_000):
            threading.Thread(target=time.sleep, args=(60,), daemon=True).start()


def _visible_text(*extra: object) -> str:
    """Everything a worker can read that might name its run: its arguments and context, its
    environment, every visible process's command line and environment, its input paths."""
    parts = [repr(x) for x in extra] + [repr(dict(os.environ)), os.getcwd(), repr(sys.argv)]
    for path in [*Path("/proc").glob("[0-9]*/cmdline"), *Path("/proc").glob("[0-9]*/environ")]:
        with contextlib.suppress(OSError):
            parts.append(path.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
    return "\n".join(parts)


class DrawFinder(_Cheat):
    """(m) Learns which draw of the simulator it is given: every number that follows "seed" in
    what it can read (its config, fit context, environment, processes, paths), and the small
    seeds, tried by simulating the tables and matching the patients' age, sex, ECOG and arm; on
    a match it predicts the draw's labels."""

    def __init__(self, profile: str, seed: int = 0, search: int = 24, **seen: object) -> None:
        super().__init__(seed)
        self.profile, self.search, self.seen = profile, search, seen
        self.context: object = None

    def fit(self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()):
        self.context = context
        return self

    def candidates(self, cohort: Cohort) -> list[int]:
        import re

        text = _visible_text(self.seen, self.context, cohort.images)
        found = [int(m) for m in re.findall(r"seed\D{0,3}(\d{1,20})", text)]
        return list(dict.fromkeys([*found, *range(self.search)]))

    def found(self, cohort: Cohort) -> pd.Series | None:
        from benchmark.data.simulator import load_profile
        from benchmark.data.simulator.tables import simulate_tables

        profile = load_profile(self.profile)
        ours = cohort.patients
        for seed in self.candidates(cohort):
            tables = simulate_tables(profile, seed)[cohort.name]
            theirs = tables.patients.set_index("patient_id").reindex(cohort.patient_ids)
            numbers = [
                (theirs[c].astype(float) == ours[c].astype(float)).all() for c in ("age", "ecog")
            ]
            texts = [(theirs[c].astype(str) == ours[c].astype(str)).all() for c in ("sex", "arm")]
            if all(numbers) and all(texts):
                labels = tables.lesions.set_index("lesion_id")["pd"]
                return labels.reindex(cohort.lesion_ids).astype(float)
        return None


PAGE = 4096


def _page_file() -> Path:
    """The largest shared library of the virtual environment: big, read-only in the sandbox,
    mostly never read (the same choice in every worker)."""
    libraries = [p for p in Path(sys.prefix).resolve().rglob("*.so*") if p.is_file()]
    site = [Path(p) for p in sys.path if "site-packages" in p]
    libraries += [p for root in site for p in root.rglob("*.so*") if p.is_file()]
    return max(libraries, key=lambda p: (p.stat().st_size, str(p)))


def _pages(lesion: str, size: int) -> tuple[int, int]:
    """The two pages that carry one lesion's label (the first: PD; the second: no PD), in the
    last half of the file, away from what loading the library reads."""
    import zlib

    slots = size // PAGE // 4
    first = size // PAGE // 2 + 2 * (zlib.crc32(lesion.encode()) % (slots - 1))
    return first * PAGE, (first + 1) * PAGE


class PageCacheCarrier(_Cheat):
    """(n) A fit reads, for every training lesion, one of its two pages of a large read-only
    file (which one: its label); a later fold's predict asks the kernel which of its lesions'
    pages are cached (``mincore``, which reads nothing in; :func:`page_residency`). The file:
    ``path``, or the virtual environment's largest library."""

    def __init__(self, seed: int = 0, path: str | None = None) -> None:
        super().__init__(seed)
        self.path = path

    def _file(self) -> Path:
        return Path(self.path) if self.path else _page_file()

    def fit(self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()):
        path = self._file()
        size = path.stat().st_size
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)  # no read-ahead around a page
            for lesion, label in outcomes.lesion_pd.items():
                os.pread(fd, 1, _pages(str(lesion), size)[0 if label else 1])
        finally:
            os.close(fd)
        return self

    def found(self, cohort: Cohort) -> pd.Series | None:
        path = self._file()
        resident = page_residency(path)
        scores = []
        for lesion in cohort.lesion_ids:
            pd_offset, no_pd_offset = _pages(lesion, len(resident) * PAGE)
            pd_page, no_pd_page = pd_offset // PAGE, no_pd_offset // PAGE
            scores.append((1 + resident[pd_page] - resident[no_pd_page]) / 2)
        return pd.Series(scores, index=cohort.lesion_ids, dtype=float)


def page_residency(path: Path) -> list[int]:
    """1 per page of ``path`` in the page cache, else 0: ``mincore`` on a private mapping. A
    probe by reading (even ``RWF_NOWAIT``) reads a missed page in, so a second probe of it, or
    of its read-ahead neighbour, finds it: noise that made this attack's result flaky."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    size = path.stat().st_size
    with path.open("rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)
    try:
        start = ctypes.c_char.from_buffer(mapped)
        pages = (ctypes.c_ubyte * (size // PAGE))()
        status = libc.mincore(ctypes.c_void_p(ctypes.addressof(start)), size // PAGE * PAGE, pages)
        del start
        if status != 0:
            raise OSError(ctypes.get_errno(), f"mincore on {path}")
        return [page & 1 for page in pages]
    finally:
        mapped.close()


class FloodReply(_Cheat):
    """(o) Answers its predict with a 200 MB message of its own on its pipe: a parent that
    reads a reply before bounding it holds it all in memory first."""

    def predict(self, cohort: Cohort) -> Predictions:
        import struct

        frame = sys._getframe()
        while frame.f_code.co_name != "serve":
            frame = frame.f_back
        fd = frame.f_locals["conn"].fileno()
        os.write(fd, struct.pack("!i", 200 * 2**20))  # multiprocessing's length header
        chunk = b"x" * 2**20
        with contextlib.suppress(OSError):
            for _ in range(200):
                os.write(fd, chunk)
        os._exit(0)


# Made when this module is imported: in every process forked after that import, the same memory.
_SHARED_MAP = __import__("mmap").mmap(-1, 1 << 20)


class SharedMapCarrier(_Cheat):
    """(p) Keeps the labels its fit gets in a shared memory map made when its module was
    imported: a server that imported the module before forking the workers hands every worker
    the same map, so a later fold's predict reads an earlier fit's labels back."""

    def fit(self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()):
        known = self._read()
        known.update(outcomes.lesion_pd.astype(float).to_dict())
        data = json.dumps(known).encode()
        _SHARED_MAP.seek(0)
        _SHARED_MAP.write(len(data).to_bytes(4, "little") + data)
        return self

    def _read(self) -> dict[str, float]:
        size = int.from_bytes(_SHARED_MAP[:4], "little")
        return json.loads(_SHARED_MAP[4 : 4 + size]) if size else {}

    def found(self, cohort: Cohort) -> pd.Series | None:
        return _known(cohort, self._read())
