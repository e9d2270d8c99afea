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

The folder's name is the model's name, written once: its config is ``<folder>.yaml`` (or
``<folder>_<variant>.yaml``), whose ``name`` is the file's stem and whose ``_target_`` lies under
``submissions.<folder>.``; :func:`naming_problems` refuses any mismatch. The leading ``_`` of the
template marks it unranked and is not part of the name (``_template``: ``template.yaml``).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from baselines import NETWORK_MODELS
from benchmark.records.record_format import PROJECT_ROOT

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


def model_stem(folder: Path) -> str:
    """The model name a submission folder gives: its name without the unranked mark ``_``."""
    return folder.name.lstrip("_")


def naming_problems(entry: ModelEntry) -> list[str]:
    """Where a submission's config names it other than after its folder (file, both names)."""
    if entry.folder is None:
        return []  # a baseline's name is its file's (conf/model/<name>.yaml)
    stem, problems = model_stem(entry.folder), []
    if entry.name != stem and not entry.name.startswith(stem + "_"):
        problems.append(
            f"{entry.config}: config {entry.name!r} is not named after its folder {stem!r}: "
            f"rename it {stem}.yaml (or {stem}_<variant>.yaml)"
        )
    try:
        config = yaml.safe_load(entry.config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return problems  # benchmark/runner/config_rules.py names the file and why
    if not isinstance(config, dict):
        return problems
    if "name" in config and config["name"] != entry.name:
        problems.append(
            f"{entry.config}: name {config['name']!r} differs from the file's {entry.name!r}: "
            f"set name: {entry.name}"
        )
    target = (config.get("submission") or {}).get("_target_")
    package = f"{SUBMISSIONS}.{entry.folder.name}."
    if isinstance(target, str) and not target.startswith(package):
        problems.append(
            f"{entry.config}: _target_ {target!r} is not under its folder's package "
            f"{package!r}: set _target_: {package}model.<YourClass>"
        )
    return problems


def duplicate_names(entries: list[ModelEntry]) -> dict[str, list[Path]]:
    """Names defined by more than one config: Hydra would silently take the first one found."""
    where: dict[str, list[Path]] = defaultdict(list)
    for entry in entries:
        where[entry.name].append(entry.config)
    return {name: paths for name, paths in where.items() if len(paths) > 1}


def by_name(root: Path = PROJECT_ROOT) -> dict[str, ModelEntry]:
    """Name -> entry; raises when two configs define the same name, or a submission's config
    is not named after its folder (:func:`naming_problems`)."""
    entries = discover(root)
    clashes = duplicate_names(entries)
    if clashes:
        lines = [f"{n}: {', '.join(str(p) for p in ps)}" for n, ps in sorted(clashes.items())]
        raise ValueError("model names defined more than once:\n  " + "\n  ".join(lines))
    misnamed = [problem for entry in entries for problem in naming_problems(entry)]
    if misnamed:
        raise ValueError("a submission is named other than its folder:\n  " + "\n  ".join(misnamed))
    return {entry.name: entry for entry in entries}
