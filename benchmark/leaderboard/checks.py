"""How each row of the board was checked: re-run, re-trained, or unverified.

A number counts only when CI re-ran the model from its committed config and got it back
(``python -m benchmark.leaderboard verify``, ``.ci/verify-records``):

- **re-run**: a classical model (no network). CI re-runs every classical record whenever code,
  configs or records change; bit-identical on the CPU type the record was made on, within
  rounding (1e-9) on another.
- **re-trained**: a deep model on the CPU. CI re-trains every deep record that is added or
  changed (and a sample of the others on every change); bit-identical on the record's CPU type,
  within the model's seed-to-seed tolerance on another (``verify.deep_tolerance``).
- **unverified**: nothing CI has can re-run it (a GPU record), and its submitter marked it so in
  ``leaderboard/unverified.yaml`` (record stem: reason). It is shown with its numbers but takes
  no rank: a record nobody re-ran cannot move the board. A record CI cannot re-run that is not
  marked fails CI.
- **incomplete**: the model has records of fewer than the seeds its board declares
  (``leaderboard/board.yaml``, :func:`load_seeds`). It is shown with its numbers but takes no
  rank: one seed's figure carries no seed-to-seed spread, and a rank taken before every seed is
  in would let a submitter stop at a lucky seed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKS = "unverified.yaml"
RERUN, RETRAINED, UNVERIFIED, INCOMPLETE = "re-run", "re-trained", "unverified", "incomplete"
# A board's declarations: ``seeds``, the model seeds every ranked model runs (submit takes no
# other seed; scripts/leaderboard_runs.sh runs leaderboard/'s). A board without the file (a
# scratch board) requires none.
DECLARATION = "board.yaml"
# Module prefixes of a deep model's config targets (besides a ``train`` node).
DEEP_TARGETS = ("benchmark.training.", "torch.", "monai.", "timm.")


@dataclass(frozen=True)
class Check:
    kind: str  # RERUN | RETRAINED | UNVERIFIED
    reason: str = ""  # why a record is unverified (its mark)

    @property
    def ranked(self) -> bool:
        return self.kind not in (UNVERIFIED, INCOMPLETE)


def is_deep(config: Mapping[str, Any]) -> bool:
    """A model that trains a torch network: its config has a ``train`` node or a torch, MONAI or
    timm target (read from the config; the submission is never built here)."""

    def walk(node: Any) -> bool:
        if isinstance(node, Mapping):
            if "train" in node:
                return True
            target = node.get("_target_")
            if isinstance(target, str) and target.startswith(DEEP_TARGETS):
                return True
            return any(walk(v) for v in node.values())
        if isinstance(node, list):
            return any(walk(v) for v in node)
        return False

    return walk(config["model"]["submission"])


def device_type(config: Mapping[str, Any]) -> str:
    return str((config.get("hardware") or {}).get("device", "cpu")).split(":")[0]


def load_marks(path: Path) -> tuple[dict[str, str], list[str]]:
    """``unverified.yaml`` as stem -> reason, and the problems with it (a missing file: none)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        return {}, []
    try:
        marks = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        return {}, [f"{path}: cannot be read ({err})"]
    if not isinstance(marks, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in marks.items()
    ):
        return {}, [f"{path}: must map record stems to a reason (text), e.g. cnn3d__seed0: why"]
    return marks, []


def how_checked(stem: str, record: Mapping[str, Any], marks: Mapping[str, str]) -> Check:
    """How CI checks the record ``stem`` (its board status)."""
    config = record["provenance"]["config"]
    if stem in marks:
        return Check(UNVERIFIED, marks[stem])
    if device_type(config) != "cpu":
        return Check(UNVERIFIED, "a GPU record: CI has no GPU to re-run it")
    return Check(RETRAINED if is_deep(config) else RERUN)


def model_check(checks: Iterable[Check]) -> Check:
    """One model's status from its records': unverified if any seed is."""
    checks = list(checks)
    for check in checks:
        if not check.ranked:
            return check
    return checks[0] if checks else Check(UNVERIFIED, "no record")


def load_seeds(path: Path) -> tuple[tuple[int, ...], list[str]]:
    """The seeds ``board.yaml`` declares (none without the file), and the problems with it."""
    import yaml

    path = Path(path)
    if not path.is_file():
        return (), []
    try:
        declared = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        return (), [f"{path}: cannot be read ({err})"]
    seeds = declared.get("seeds") if isinstance(declared, dict) else None
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    ):
        return (), [f"{path}: seeds must be a list of model seeds, e.g. seeds: [0, 1, 2]"]
    return tuple(sorted(set(seeds))), []


def missing_seeds(seeds: Iterable[int], required: Iterable[int]) -> list[int]:
    """The board's seeds a model has no record of."""
    return sorted(set(required) - set(seeds))


def seeds_check(check: Check, seeds: Iterable[int], required: Iterable[int]) -> Check:
    """``check``, or :data:`INCOMPLETE` when a model with ranked records lacks some seed."""
    seeds, missing = sorted(set(seeds)), missing_seeds(seeds, required)
    if not check.ranked or not missing:
        return check
    have = ", ".join(map(str, seeds)) or "none"
    need = ", ".join(map(str, sorted(set(required))))
    return Check(
        INCOMPLETE,
        f"seeds {have} of the board's {need}; submit seed(s) "
        f"{', '.join(map(str, missing))} to rank it",
    )


__all__ = [
    "DECLARATION",
    "INCOMPLETE",
    "MARKS",
    "RERUN",
    "RETRAINED",
    "UNVERIFIED",
    "Check",
    "device_type",
    "how_checked",
    "is_deep",
    "load_marks",
    "load_seeds",
    "missing_seeds",
    "model_check",
    "seeds_check",
]
