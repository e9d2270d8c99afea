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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKS = "unverified.yaml"
RERUN, RETRAINED, UNVERIFIED = "re-run", "re-trained", "unverified"
# Module prefixes of a deep model's config targets (besides a ``train`` node).
DEEP_TARGETS = ("benchmark.training.", "torch.", "monai.", "timm.")


@dataclass(frozen=True)
class Check:
    kind: str  # RERUN | RETRAINED | UNVERIFIED
    reason: str = ""  # why a record is unverified (its mark)

    @property
    def ranked(self) -> bool:
        return self.kind != UNVERIFIED


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


__all__ = [
    "MARKS",
    "RERUN",
    "RETRAINED",
    "UNVERIFIED",
    "Check",
    "device_type",
    "how_checked",
    "is_deep",
    "load_marks",
    "model_check",
]
