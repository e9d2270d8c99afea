"""A leaderboard in memory: accepted records, one ranked section per (cohort, task), throughput.

Everything the README and the figures show is computed here, from the files alone, so the same
files always give the same board.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.leaderboard.checks import (
    DECLARATION,
    MARKS,
    Check,
    how_checked,
    load_marks,
    load_seeds,
    model_check,
    seeds_check,
)
from benchmark.leaderboard.datasets import SiteDataset, load_datasets
from benchmark.leaderboard.fresh_aggregate import Fresh, load_fresh
from benchmark.leaderboard.oracle import ORACLE, load_oracle
from benchmark.leaderboard.predictions import PRIMARY_METRIC, SECONDARY_METRIC
from benchmark.leaderboard.ranking import SeedMean, Standing, rank_seed_means, seed_means
from benchmark.leaderboard.store import Entry, LeaderboardError, load_entries
from benchmark.leaderboard.throughput_table import ThroughputRecord, load_throughput
from benchmark.records.catalog import ModelEntry, by_name
from benchmark.records.reading import (
    Reference,
    SeedRow,
    aggregate_seeds,
    expected_cohort_keys,
    model_config_key,
)
from benchmark.records.record_format import PROJECT_ROOT

LEADERBOARD_DIR = PROJECT_ROOT / "leaderboard"


@dataclass(frozen=True)
class Paths:
    """Where a leaderboard's inputs and outputs live (``leaderboard/`` by default)."""

    results: Path
    throughput: Path
    readme: Path
    figures: Path
    fresh: Path  # <model>.json: figures over fresh data draws (leaderboard/fresh_aggregate.py)
    datasets: Path  # <name>.yaml + <name>.json: site boards of private data (.datasets)
    marks: Path  # unverified.yaml: records nothing here can re-run (.checks)
    calibration: Path  # the simulator's calibration report (python -m benchmark.calibration)
    declaration: Path  # board.yaml: the seeds every ranked model runs (.checks)

    @classmethod
    def under(cls, root: Path = LEADERBOARD_DIR) -> Paths:
        root = Path(root)
        return cls(
            root / "results",
            root / "throughput",
            root / "README.md",
            root / "figures",
            root / "fresh",
            root / "datasets",
            root / MARKS,
            root / "calibration",
            root / DECLARATION,
        )

    @property
    def oracle(self) -> Path:
        """The oracle's predictions, beside the records (:mod:`.oracle`)."""
        return self.results / ORACLE


@dataclass(frozen=True)
class Section:
    """One table of the README: every model with this task on this cohort, best first."""

    cohort: str
    task: str
    standings: list[Standing]
    secondary: dict[str, SeedRow]  # model -> the secondary metric over seeds
    oracle: dict[str, dict[str, Any]]  # metric name -> the record's oracle metric
    n: int
    n_positive: int | None  # PD lesions (lesion_pd) or events (os, pfs)
    # model -> its seed-mean on the shared resamples: the paired difference of any two models
    means: dict[str, SeedMean] = field(default_factory=dict)

    @property
    def primary(self) -> str:
        return PRIMARY_METRIC[self.task]

    @property
    def secondary_metric(self) -> str:
        return SECONDARY_METRIC[self.task]


@dataclass(frozen=True)
class Board:
    reference: Reference
    entries: list[Entry]
    sections: list[Section]
    throughput: list[ThroughputRecord]
    models: dict[str, ModelEntry] = field(default_factory=dict)
    fresh: dict[str, Fresh] = field(default_factory=dict)  # model -> its fresh-draw aggregate
    sites: list[SiteDataset] = field(default_factory=list)  # registered private datasets
    checks: dict[str, Check] = field(default_factory=dict)  # model -> how CI checks its records
    marks: dict[str, str] = field(default_factory=dict)  # record stem -> why it is unverified
    # The simulator truth's rows, checked against the records (.oracle); None: no such file.
    oracle: pd.DataFrame | None = None
    seeds: tuple[int, ...] = ()  # the seeds a model needs to be ranked (board.yaml); (): any

    def ranked(self, model: str) -> bool:
        """Whether the model takes a rank: every record of it was re-run (``.checks``)."""
        return model not in self.checks or self.checks[model].ranked

    def runs(self, cohort: str, task: str) -> dict[str, list[tuple[int, pd.DataFrame]]]:
        """model -> [(seed, predictions of this cohort and task, in file order)], seeds sorted."""
        out: dict[str, list[tuple[int, pd.DataFrame]]] = defaultdict(list)
        for entry in sorted(self.entries, key=lambda e: (e.model, e.seed)):
            rows = _slice(entry, cohort, task)
            if len(rows):
                out[entry.model].append((entry.seed, rows))
        return dict(out)

    def model_runs(self, model: str, cohort: str, task: str) -> list[tuple[int, pd.DataFrame]]:
        """``runs(cohort, task)[model]`` without slicing every other model's predictions."""
        mine = sorted((e for e in self.entries if e.model == model), key=lambda e: e.seed)
        return [(e.seed, rows) for e in mine if len(rows := _slice(e, cohort, task))]

    def oracle_rows(self, cohort: str, task: str) -> pd.DataFrame | None:
        """The oracle's predictions of this cohort and task; None without an oracle file."""
        if self.oracle is None:
            return None
        frame = self.oracle
        rows = frame[(frame["cohort"] == cohort) & (frame["task"] == task)]
        return rows.reset_index(drop=True) if len(rows) else None


def _slice(entry: Entry, cohort: str, task: str) -> pd.DataFrame:
    frame = entry.predictions
    return frame[(frame["cohort"] == cohort) & (frame["task"] == task)].reset_index(drop=True)


def _section(
    cohort: str, task: str, entries: list[Entry], reference: Reference, rows: dict, board: Board
) -> Section | None:
    runs = board.runs(cohort, task)
    if not runs:
        return None
    boot = reference.protocol["bootstrap"]
    means = seed_means(task, runs, n_boot=int(boot["n_boot"]), seed=int(boot["seed"]))
    seeds = {m: [s for s, _ in found] for m, found in runs.items()}
    ranked = {m: mean for m, mean in means.items() if board.ranked(m)}
    standings = rank_seed_means(seeds, ranked)
    # An unverified or incomplete model shows its own figures, after the ranked ones, unranked.
    for model in sorted(set(means) - set(ranked)):
        (alone,) = rank_seed_means(seeds, {model: means[model]})
        standings.append(replace(alone, rank=None, rank_median=None, rank_ci95=None, p_best=None))
    secondary = {
        model: rows[(model, cohort, task, SECONDARY_METRIC[task])]
        for model in runs
        if (model, cohort, task, SECONDARY_METRIC[task]) in rows
    }
    oracle: dict[str, dict[str, Any]] = {}
    for entry in sorted(entries, key=lambda e: e.path.name):
        found = entry.record["oracle"].get(cohort, {}).get(task)
        if found:
            oracle = found
            break
    first = next(
        e.record["metrics"][cohort][task][PRIMARY_METRIC[task]]
        for e in sorted(entries, key=lambda e: e.path.name)
        if task in e.record["metrics"].get(cohort, {})
    )
    positive = first.get("n_pos") if task == "lesion_pd" else first.get("n_events")
    return Section(cohort, task, standings, secondary, oracle, int(first["n"]), positive, means)


def assemble(
    entries: list[Entry],
    reference: Reference,
    throughput: list[ThroughputRecord],
    models: dict[str, ModelEntry],
    fresh: dict[str, Fresh] | None = None,
    sites: list[SiteDataset] | None = None,
    marks: dict[str, str] | None = None,
    oracle: pd.DataFrame | None = None,
    *,
    rank: bool = True,
    seeds: tuple[int, ...] = (),
) -> Board:
    """Rank every (cohort, task) of the protocol that some record scored (``rank=False``: no
    sections yet); models with a record nobody re-ran (``marks``, GPU records) or without every
    seed the board declares (``seeds``, from ``board.yaml``) are shown without a rank."""
    fresh, sites, marks = fresh or {}, sites or [], marks or {}
    per_model: dict[str, list[Check]] = defaultdict(list)
    have: dict[str, list[int]] = defaultdict(list)
    for entry in sorted(entries, key=lambda e: e.path.name):
        stem = entry.path.name.removesuffix(".json")
        per_model[entry.model].append(how_checked(stem, entry.record, marks))
        have[entry.model].append(entry.seed)
    checks = {
        model: seeds_check(model_check(found), have[model], seeds)
        for model, found in per_model.items()
    }
    board = Board(
        reference, entries, [], throughput, models, fresh, sites, checks, marks, oracle, seeds
    )
    if not rank:
        return board
    rows = {
        (r.model, r.cohort, r.task, r.metric): r
        for r in aggregate_seeds([e.record for e in entries])
    }
    sections = []
    for cohort in expected_cohort_keys(reference.protocol):
        for task in reference.protocol["tasks"]:
            section = _section(cohort, task, entries, reference, rows, board)
            if section is not None:
                sections.append(section)
    return Board(
        reference, entries, sections, throughput, models, fresh, sites, checks, marks, oracle, seeds
    )


def load_board(paths: Paths, reference: Reference, *, ranked: bool = True) -> Board:
    """Read and check every record, the oracle's predictions and every throughput file;
    :class:`LeaderboardError` lists all
    refusals at once. ``ranked=False`` skips the ranking (no sections): for a caller that adds
    models and ranks once with :func:`assemble`."""
    try:
        models = by_name()
    except ValueError as err:  # two configs define one model name
        raise LeaderboardError([str(err)]) from None
    problems: list[str] = []
    try:
        entries = load_entries(paths.results, reference, models)
    except LeaderboardError as err:
        problems += err.problems
        entries = []
    oracle, more = load_oracle(paths.oracle, entries, reference.protocol)
    problems += more
    throughput, more = load_throughput(paths.throughput)
    problems += more
    configs = {e.model: model_config_key(e.record["provenance"]["config"]) for e in entries}
    fresh: dict[str, Fresh] = {}
    if entries or not problems:  # with the records refused, every aggregate would look orphaned
        fresh, more = load_fresh(paths.fresh, reference.data, reference.protocol, configs)
        problems += more
    sites, more = load_datasets(paths.datasets, reference.protocol)
    problems += more
    marks, more = load_marks(paths.marks)
    problems += more
    seeds, more = load_seeds(paths.declaration)
    problems += more
    stems = {e.path.name.removesuffix(".json") for e in entries}
    problems += [
        f"{paths.marks}: {stem}: no such record on the board" for stem in sorted(set(marks) - stems)
    ]
    if problems:
        raise LeaderboardError(problems)
    on_board = {m: models[m] for m in sorted(configs)}
    return assemble(
        entries,
        reference,
        throughput,
        on_board,
        fresh,
        sites,
        marks,
        oracle,
        rank=ranked,
        seeds=seeds,
    )
