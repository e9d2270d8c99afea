"""Record-based calibration: what the committed leaderboard records say, mean over model seeds.

Paired differences use the leaderboard's own machinery (the same patient resamples for both
models, seed-means per resample), so a figure here is the figure the board shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.leaderboard.predictions import PRIMARY_METRIC
from benchmark.leaderboard.ranking import Interval, SeedMean, seed_mean
from benchmark.leaderboard.store import Entry, LeaderboardError, load_entries
from benchmark.records.catalog import by_name
from benchmark.records.reading import Reference

DEVELOPMENT = "pembro_rt_cv"
EXTERNAL = ("nivorad", "mdacc")
DEEP = ("cnn3d", "timm25d_resnet18", "timm25d_efficientnet_b0", "timm25d_convnext_atto")


@dataclass(frozen=True)
class Board:
    """The accepted records, by model; their protocol's bootstrap settings."""

    entries: dict[str, list[Entry]]
    n_boot: int
    boot_seed: int
    fingerprint: str | None

    def models(self) -> list[str]:
        return sorted(self.entries)

    def _runs(self, model: str, cohort: str, task: str) -> list[tuple[int, pd.DataFrame]]:
        out = []
        for entry in sorted(self.entries.get(model, []), key=lambda e: e.seed):
            frame = entry.predictions
            rows = frame[(frame["cohort"] == cohort) & (frame["task"] == task)]
            out.append((entry.seed, rows.reset_index(drop=True)))
        return out

    def seed_mean(self, model: str, cohort: str, task: str) -> SeedMean | None:
        runs = self._runs(model, cohort, task)
        if not runs or not len(runs[0][1]):
            return None
        order = pd.Index(runs[0][1]["id"])
        return seed_mean(task, runs, order, n_boot=self.n_boot, seed=self.boot_seed, where=model)

    def difference(
        self, a: str, b: str, cohort: str, task: str
    ) -> tuple[float, Interval | None] | None:
        """Paired difference of seed-means ``a - b`` with its CI; None if either is missing."""
        runs_a, runs_b = self._runs(a, cohort, task), self._runs(b, cohort, task)
        if not runs_a or not runs_b or not len(runs_a[0][1]):
            return None
        order = pd.Index(runs_a[0][1]["id"])
        kw = {"n_boot": self.n_boot, "seed": self.boot_seed}
        ma, mb = seed_mean(task, runs_a, order, **kw), seed_mean(task, runs_b, order, **kw)
        if ma.reason or mb.reason:
            return None
        return ma.minus(mb)

    def oracle(self, cohort: str, task: str) -> float | None:
        for entries in self.entries.values():
            for entry in entries:
                found = entry.record["oracle"].get(cohort, {}).get(task)
                if found:
                    return found[PRIMARY_METRIC[task]]["value"]
        return None

    def mean(self, model: str, cohort: str, task: str) -> float | None:
        found = self.seed_mean(model, cohort, task)
        return None if found is None or found.reason else found.value


def load_board(results: Path, data: str = "default") -> tuple[Board | None, list[str]]:
    """The records of ``results`` that the current protocol accepts, or the reasons it refuses."""
    reference = Reference.from_conf(data)
    try:
        entries = load_entries(results, reference, by_name())
    except LeaderboardError as err:
        return None, list(err.problems)
    by_model: dict[str, list[Entry]] = {}
    for entry in entries:
        by_model.setdefault(entry.model, []).append(entry)
    boot = reference.protocol["bootstrap"]
    fingerprints = {e.record["provenance"]["data_fingerprint"] for e in entries}
    fingerprint = fingerprints.pop() if len(fingerprints) == 1 else None
    return Board(by_model, int(boot["n_boot"]), int(boot["seed"]), fingerprint), []
