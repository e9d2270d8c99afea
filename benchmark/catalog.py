"""Every model the harness can run: baselines (``conf/model/*.yaml``) and submissions.

A submission is a folder ``submissions/<folder>/`` whose ``conf/model/*.yaml`` Hydra finds
through ``hydra_plugins/nsclc_io_bench_submissions`` (same glob as here). A folder whose name
starts with ``_`` (the copy-me ``_template``) runs like any other but never enters the
leaderboard. The contract tests and the leaderboard both read this list, so a new folder is
tested and ranked without anyone editing a list.

Whether a model is deep (trains a network: its ``network()`` returns a ``Network``) is declared,
never guessed from its name: a submission's model card says ``network: true``, a baseline is in
``baselines.NETWORK_MODELS``. ``python -m benchmark.check`` holds the declaration against what
``network()`` returns in the sandbox.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from baselines import NETWORK_MODELS
from benchmark.record_format import PROJECT_ROOT

Kind = Literal["baseline", "submission", "template"]
SUBMISSIONS = "submissions"
MODEL_CARD = "model_card.yaml"


@dataclass(frozen=True)
class ModelEntry:
    """One runnable model config: ``python -m benchmark model=<name>``."""

    name: str
    kind: Kind
    config: Path  # the Hydra config file
    folder: Path | None = None  # the submission folder; None for baselines

    @property
    def on_leaderboard(self) -> bool:
        return self.kind != "template"

    @property
    def deep(self) -> bool:
        """Declared: a deep model trains a network per fold (minutes even on the tiny cohorts)."""
        if self.folder is None:
            return self.name in NETWORK_MODELS
        return declared_network(self.folder)


@functools.cache
def declared_network(folder: Path) -> bool:
    """The card's ``network`` field (false when absent or unreadable: the folder check names a
    broken card)."""
    try:
        card = yaml.safe_load((Path(folder) / MODEL_CARD).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(card, dict) and card.get("network") is True


def submission_folders(root: Path = PROJECT_ROOT) -> list[Path]:
    """``submissions/<folder>`` with a ``conf/`` folder, sorted (what the Hydra plugin adds)."""
    return sorted(p.parent for p in (root / SUBMISSIONS).glob("*/conf") if p.is_dir())


def discover(root: Path = PROJECT_ROOT) -> list[ModelEntry]:
    """Baselines first, then submissions, each sorted by name; duplicates are kept (see below)."""
    entries = [
        ModelEntry(p.stem, "baseline", p) for p in sorted((root / "conf" / "model").glob("*.yaml"))
    ]
    for folder in submission_folders(root):
        kind: Kind = "template" if folder.name.startswith("_") else "submission"
        for config in sorted((folder / "conf" / "model").glob("*.yaml")):
            entries.append(ModelEntry(config.stem, kind, config, folder))
    return entries


def duplicate_names(entries: list[ModelEntry]) -> dict[str, list[Path]]:
    """Names defined by more than one config: Hydra would silently take the first one found."""
    where: dict[str, list[Path]] = defaultdict(list)
    for entry in entries:
        where[entry.name].append(entry.config)
    return {name: paths for name, paths in where.items() if len(paths) > 1}


def by_name(root: Path = PROJECT_ROOT) -> dict[str, ModelEntry]:
    """Name -> entry; raises when two configs define the same name."""
    entries = discover(root)
    clashes = duplicate_names(entries)
    if clashes:
        lines = [f"{n}: {', '.join(str(p) for p in ps)}" for n, ps in sorted(clashes.items())]
        raise ValueError("model names defined more than once:\n  " + "\n  ".join(lines))
    return {entry.name: entry for entry in entries}
