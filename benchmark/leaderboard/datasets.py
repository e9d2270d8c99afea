"""Registered site datasets: ``leaderboard/datasets/<name>.yaml`` beside the site record ``.json``.

A site dataset's board cannot be re-run by CI (its data never leave the site), so it is
validated instead: the record matches its schema, the fingerprint the site registered, the
board's protocol, and a harness commit of this repository's history (not a modified tree).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmark.records.reading import (
    CONF_DIR,
    RecordError,
    compose_config,
    differing_keys,
    parse_record,
)
from benchmark.records.record_format import PROJECT_ROOT
from benchmark.records.schemas import SITE_V1, schema_errors
from benchmark.utils.atomic import write_atomic

REGISTRATION_KEYS = ("name", "description", "holder", "fingerprint", "protocol")


@dataclass(frozen=True)
class SiteDataset:
    """One registered dataset and its site record."""

    registration: dict[str, str]
    record: dict[str, Any]
    path: Path  # the registration (.yaml)

    @property
    def name(self) -> str:
        return self.registration["name"]

    def section(self, cohort: str, task: str) -> dict[str, Any] | None:
        return next(
            (s for s in self.record["sections"] if (s["cohort"], s["task"]) == (cohort, task)),
            None,
        )


def known_commit(commit: str, root: Path = PROJECT_ROOT) -> str | None:
    """Why ``commit`` is not a harness commit of this checkout's history (None: it is)."""
    if commit.endswith("-dirty") or commit == "unknown":
        return f"harness commit {commit!r}: the site ran a modified or unknown harness"
    try:
        found = subprocess.run(
            ["git", "merge-base", "--is-ancestor", commit, "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
        )
    except OSError as err:
        return f"harness commit {commit[:12]} cannot be checked here (git: {err})"
    if found.returncode != 0:
        ask = ["git", "rev-parse", "--is-shallow-repository"]
        shallow = subprocess.run(ask, cwd=root, capture_output=True, text=True).stdout.strip()
        hint = " (this clone is shallow: git fetch --unshallow)" if shallow == "true" else ""
        return f"harness commit {commit[:12]} is not in this repository's history{hint}"
    return None


def protocol_of(option: str) -> dict[str, Any]:
    """The resolved ``conf/protocol/<option>.yaml``."""
    path = CONF_DIR / "protocol" / f"{option}.yaml"
    if not path.is_file():
        raise ValueError(f"no protocol option {option!r} (conf/protocol/)")
    from omegaconf import OmegaConf

    cfg = compose_config([f"protocol={option}"])
    return OmegaConf.to_container(cfg.protocol, resolve=True)


def _registration(path: Path) -> tuple[dict[str, str] | None, list[str]]:
    try:
        found = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        return None, [f"unreadable ({err})"]
    if not isinstance(found, dict):
        return None, ["not a mapping of " + ", ".join(REGISTRATION_KEYS)]
    problems = [f"missing {k!r}" for k in REGISTRATION_KEYS if not found.get(k)]
    problems += [f"unknown key {k!r}" for k in found if k not in REGISTRATION_KEYS]
    if found.get("name") and found["name"] != path.stem:
        problems.append(f"name {found['name']!r} is not the file's ({path.stem})")
    return {k: str(v) for k, v in found.items()}, problems


def dataset_problems(
    registration: dict[str, str],
    record: dict[str, Any],
    board_protocol: dict[str, Any],
    commit_check: Callable[[str], str | None] = known_commit,
) -> list[str]:
    """Why a site record does not stand for its registration on this board (empty: it does)."""
    problems = schema_errors(record, SITE_V1)
    if problems:
        return problems
    if record["dataset"] != registration["name"]:
        problems.append(f"the record is of dataset {record['dataset']!r}")
    if record["data_fingerprint"] != registration["fingerprint"]:
        problems.append(
            f"fingerprint {record['data_fingerprint'][:19]}… is not the registered "
            f"{registration['fingerprint'][:19]}… (other data than the site registered)"
        )
    try:
        registered = protocol_of(registration["protocol"])
    except ValueError as err:
        return problems + [str(err)]
    keys = differing_keys(record["protocol"], registered)
    if keys:
        where = f"conf/protocol/{registration['protocol']}"
        problems.append(f"protocol differs from {where}: {keys[0]}")
    keys = differing_keys(record["protocol"], board_protocol)
    if keys:
        problems.append(f"protocol differs from the board's: {keys[0]}")
    reason = commit_check(record["harness_commit"])
    return problems + ([reason] if reason else [])


def load_datasets(
    folder: Path,
    board_protocol: dict[str, Any],
    commit_check: Callable[[str], str | None] = known_commit,
) -> tuple[list[SiteDataset], list[str]]:
    """Every registered dataset of ``folder``, by name, and the problems of those refused."""
    folder = Path(folder)
    found, problems = [], []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        registration, reasons = _registration(path)
        record_path = path.with_suffix(".json")
        record = None
        if not reasons:
            try:
                record = parse_record(record_path.read_text(encoding="utf-8"), record_path)
            except OSError:
                reasons.append(f"no site record {record_path.name} beside it")
            except RecordError as err:
                reasons += err.reasons
        if record is not None and registration is not None:
            reasons += dataset_problems(registration, record, board_protocol, commit_check)
        if reasons:
            problems.append(str(RecordError(path, reasons)))
        else:
            found.append(SiteDataset(registration, record, path))
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if not path.with_suffix(".yaml").is_file():
            problems.append(f"{path}: refused:\n  - a site record without a registration (.yaml)")
    return found, problems


def register(record_path: Path, holder: str, description: str, root: Path) -> Path:
    """Write ``root/datasets/<name>.yaml`` for a site record and copy the record beside it.

    The registration names the protocol option the record was run under and the record's
    fingerprint; RecordError (nothing written) if the record would be refused by the board.
    """
    record_path = Path(record_path)
    record = parse_record(record_path.read_text(encoding="utf-8"), record_path)
    errors = schema_errors(record, SITE_V1)
    if errors:
        raise RecordError(record_path, errors)
    options = sorted(p.stem for p in (CONF_DIR / "protocol").glob("*.yaml"))
    same = [o for o in options if not differing_keys(record["protocol"], protocol_of(o))]
    option = same[0] if same else None
    if option is None:
        raise RecordError(record_path, [f"its protocol is none of conf/protocol/ ({options})"])
    registration = {
        "name": record["dataset"],
        "description": description,
        "holder": holder,
        "fingerprint": record["data_fingerprint"],
        "protocol": option,
    }
    problems = dataset_problems(registration, record, protocol_of(option))
    if problems:
        raise RecordError(record_path, problems)
    target = Path(root) / "datasets" / f"{record['dataset']}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
    write_atomic(target, yaml.safe_dump(registration, sort_keys=False, allow_unicode=True))
    return target
