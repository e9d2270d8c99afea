"""How a board row was checked, as the web board shows it: the board's own answer
(``benchmark/leaderboard/checks.py``: re-run, re-trained, or unverified and unranked), per record
and per model (a model's row is as checked as its weakest seed; one without every seed of the
board is incomplete and unranked)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from benchmark.leaderboard.checks import (
    INCOMPLETE,
    RERUN,
    RETRAINED,
    UNVERIFIED,
    Check,
    how_checked,
)
from benchmark.leaderboard.store import Entry

LABEL = {
    RERUN: "re-run by CI",
    RETRAINED: "re-trained by CI",
    UNVERIFIED: "unverified",
    INCOMPLETE: "incomplete seeds",
}
DETAIL = {
    RERUN: "CI re-runs every classical record on every change: bit-identical on the record's "
    "CPU type, within 1e-9 on another",
    RETRAINED: "CI re-trained it when it was added or changed: bit-identical on the record's "
    "CPU type, within the model's seed tolerance on another",
}
# Weakest first: a model's row is as strong as its weakest record.
STRENGTH = {INCOMPLETE: 0, UNVERIFIED: 0, RETRAINED: 1, RERUN: 2}


@dataclass(frozen=True)
class Verification:
    status: str  # RERUN, RETRAINED, UNVERIFIED or INCOMPLETE
    detail: str

    @property
    def label(self) -> str:
        return LABEL[self.status]


def verification_status(entry: Entry, marks: Mapping[str, str]) -> Verification:
    """How ``entry`` was checked (``marks``: the board's ``unverified.yaml``)."""
    check = how_checked(entry.path.name.removesuffix(".json"), entry.record, marks)
    return Verification(check.kind, check.reason or DETAIL[check.kind])


def model_verification(
    entries: Sequence[Entry], marks: Mapping[str, str], check: Check | None = None
) -> Verification:
    """A model's row: the weakest status of its seeds, each seed's detail listed; incomplete
    when the board's ``check`` of the model says so (seeds missing)."""
    found = [(e.seed, verification_status(e, marks)) for e in sorted(entries, key=lambda e: e.seed)]
    if not found:
        return Verification(UNVERIFIED, "no record")
    weakest = min((v.status for _, v in found), key=STRENGTH.__getitem__)
    seeds: dict[Verification, list[int]] = {}
    for seed, v in found:
        seeds.setdefault(v, []).append(seed)
    detail = "; ".join(
        f"seed{'s' if len(s) > 1 else ''} {', '.join(map(str, s))}: {v.label} ({v.detail})"
        for v, s in seeds.items()
    )
    if check is not None and check.kind == INCOMPLETE:
        return Verification(INCOMPLETE, f"{check.reason}; {detail}")
    return Verification(weakest, detail)
