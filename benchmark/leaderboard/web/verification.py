"""How a board row was checked: re-run exactly, re-trained within tolerance, or unverified.

A number counts only when the harness re-ran it (``python -m benchmark.leaderboard verify``),
so every row of the web board says how. :func:`verification_status` is the one place that
decides it for a record: it reads ``record["verification"]`` (``{"status": "exact" |
"tolerance" | "unverified", "detail": "..."}``) where the record carries one, and otherwise
calls the record unverified, saying what could check it. A model's row shows its weakest seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchmark.leaderboard.store import Entry

EXACT, TOLERANCE, UNVERIFIED = "exact", "tolerance", "unverified"
LABEL = {
    EXACT: "re-run exactly",
    TOLERANCE: "re-trained within tolerance",
    UNVERIFIED: "unverified",
}
# Weakest first: a model's row is as strong as its weakest record.
STRENGTH = {UNVERIFIED: 0, TOLERANCE: 1, EXACT: 2}


@dataclass(frozen=True)
class Verification:
    status: str  # EXACT, TOLERANCE or UNVERIFIED
    detail: str

    @property
    def label(self) -> str:
        return LABEL[self.status]


def _could_check(record: Mapping[str, Any]) -> str:
    hardware = record["provenance"].get("hardware") or {}
    if hardware.get("gpu") or str(hardware.get("device", "")).startswith("cuda"):
        return "a GPU record: only a machine with the same GPU can re-run it"
    key = hardware.get("key")
    where = f"on CPU type {key}" if key else "on the CPU vendor it names"
    return f"no re-run recorded; `verify` can re-run it {where}"


def verification_status(entry: Entry) -> Verification:
    """How ``entry`` was checked, from its record."""
    found = entry.record.get("verification")
    if isinstance(found, Mapping) and found.get("status") in LABEL:
        return Verification(str(found["status"]), str(found.get("detail") or ""))
    return Verification(UNVERIFIED, _could_check(entry.record))


def model_verification(entries: Sequence[Entry]) -> Verification:
    """A model's row: the weakest status of its seeds, each seed's detail listed."""
    found = [(e.seed, verification_status(e)) for e in sorted(entries, key=lambda e: e.seed)]
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
    return Verification(weakest, detail)
