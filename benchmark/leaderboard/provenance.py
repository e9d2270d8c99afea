"""Whether a record's commit holds the code that made it, as it is in this checkout.

A record names the commit it ran at (``provenance.git_commit``, ``-dirty`` when tracked files
differed, or a new file was not yet committed: :func:`benchmark.records.record_format.git_commit`).
Anyone re-runs a record from that commit, so ``submit`` refuses one whose commit is dirty or not
in this repository, or does not contain the model's files exactly as they are here: a
submission's whole folder, or a baseline's config and the module of its class.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmark.records.catalog import ModelEntry
from benchmark.records.record_format import PROJECT_ROOT

DIRTY = "-dirty"
FIX = "commit the model's files, re-run it from that commit and submit the new run folder"


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)


def model_paths(entry: ModelEntry, record: Mapping[str, Any], root: Path) -> list[Path]:
    """The files a model is made of, relative to ``root``: a submission's folder, or a
    baseline's config and the module its ``_target_`` names (when it is in this checkout)."""
    if entry.folder is not None:
        return [entry.folder.relative_to(root)]
    paths = [entry.config.relative_to(root)]
    target = record["provenance"]["config"]["model"]["submission"].get("_target_", "")
    module = Path(*str(target).split(".")[:-1])
    for candidate in (module.with_suffix(".py"), module / "__init__.py"):
        if candidate.parts and (root / candidate).is_file():
            paths.append(candidate)
            break
    return paths


def commit_problems(
    record: Mapping[str, Any], entry: ModelEntry, root: Path = PROJECT_ROOT
) -> list[str]:
    """Why ``record``'s commit is not a clean commit holding ``entry``'s files as they are."""
    commit = str(record["provenance"]["git_commit"])
    if commit.endswith(DIRTY):
        return [f"provenance.git_commit {commit}: the run was made from uncommitted changes; {FIX}"]
    if _git(root, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        return [
            f"provenance.git_commit {commit!r} is not a commit of this repository ({root}); {FIX}"
        ]
    problems = []
    for path in model_paths(entry, record, root):
        listed = _git(root, "ls-tree", "-r", "--name-only", commit, "--", str(path))
        if not listed.stdout.strip():
            problems.append(f"{path}: not in commit {commit[:12]}; {FIX}")
            continue
        changed = _git(root, "diff", "--name-only", commit, "--", str(path)).stdout.split()
        untracked = _git(
            root, "ls-files", "--others", "--exclude-standard", "--", str(path)
        ).stdout.split()
        for name in changed:
            problems.append(f"{name}: differs from commit {commit[:12]} the record ran at; {FIX}")
        for name in untracked:
            problems.append(f"{name}: not in commit {commit[:12]} (untracked); {FIX}")
    return problems
