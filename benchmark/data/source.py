"""Where a run's cohorts come from: a folder on disk, or the simulator (built once, then cached).

:func:`open_dataset` is how both entry points (``benchmark/runner/run.py``, the throughput tool) get
their data: resolve the root, scan it (a malformed cohort fails here, naming file and row),
then load the blinded cohort views with their outcomes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from benchmark.api.cohort import Cohort, LabelledCohort


def simulated_root(profile: Mapping[str, Any], seed: int, cache_dir: Path) -> Path:
    """Cache folder of one simulated dataset, keyed by profile content, seed and generator version.

    The profile's content is in the key, so overriding any simulator field builds a new dataset
    instead of silently reusing an old one.
    """
    from benchmark.data.simulator import GENERATOR_VERSION

    digest = hashlib.sha256(json.dumps(profile, sort_keys=True).encode()).hexdigest()[:10]
    name = f"{profile.get('name', 'custom')}-seed{seed}-v{GENERATOR_VERSION}-{digest}"
    return cache_dir / "data" / name


def resolve_root(data: Mapping[str, Any], cache_dir: Path, workers: int = 1) -> Path:
    """The dataset root for a ``data`` config node, simulating it first if needed."""
    source = data.get("source")
    if source == "folder":
        if not data.get("root"):
            raise ValueError("data=folder needs data.root=PATH (a folder in the cohort layout)")
        root = Path(data["root"]).expanduser().resolve()
        if not root.is_dir():
            raise FileNotFoundError(f"data.root={root} is not a folder")
        return root
    if source == "simulated":
        from benchmark.data.simulator import simulate

        profile, seed = dict(data["profile"]), int(data["seed"])
        root = simulated_root(profile, seed, cache_dir)
        if (root / "dataset.json").is_file():
            return root
        root.parent.mkdir(parents=True, exist_ok=True)
        # Several jobs may start on a cold cache at once: one builds, the others wait and reuse.
        with FileLock(str(root) + ".lock"):
            if not (root / "dataset.json").is_file():
                simulate(profile, seed, root, workers=workers)
        return root
    raise ValueError(f"data.source must be 'simulated' or 'folder', got {source!r}")


@dataclass(frozen=True)
class Dataset:
    """A scanned dataset: its root, content fingerprint, and where its caches live."""

    root: Path
    fingerprint: str
    cache_dir: Path

    @property
    def view_dir(self) -> Path:
        """The blinded image views of this dataset's content (image files only, no tables)."""
        return self.cache_dir / "views" / self.fingerprint.removeprefix("sha256:")[:16]

    def load(self, names: Iterable[str]) -> dict[str, LabelledCohort]:
        """The cohorts ``names``: blinded views plus their outcomes."""
        return {name: self._read(name) for name in names}

    def views(self, names: Iterable[str]) -> dict[str, Cohort]:
        """The blinded views of cohorts ``names``, their outcomes dropped as they are read."""
        return {name: self._read(name).cohort for name in names}

    def _read(self, name: str) -> LabelledCohort:
        from benchmark.data import layout

        return LabelledCohort(
            *layout.load(self.root, name, view_dir=self.view_dir, cache_dir=self.cache_dir)
        )

    def truth(self, name: str) -> Any:
        """The simulator's truth of cohort ``name`` (None for data from a folder)."""
        from benchmark.data import layout

        return layout.load_truth(self.root, name)


def open_dataset(
    data: Mapping[str, Any], names: Iterable[str], cache_dir: Path, workers: int = 1
) -> Dataset:
    """Resolve the ``data`` config node and scan cohorts ``names``; raise on any problem."""
    from benchmark.data import layout

    cache_dir = Path(cache_dir)
    root = resolve_root(data, cache_dir, workers=workers)
    scan = layout.scan(root, list(names), progress=True, cache_dir=cache_dir)
    if scan.problems:
        raise layout.CohortError(scan.problems, root)
    return Dataset(root, scan.fingerprint, cache_dir)
