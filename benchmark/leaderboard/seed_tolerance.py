"""How far a deep model re-trained on another CPU type may land from its committed record.

A deep model's CPU training is bit-reproducible only on the CPU type it ran on: another one
(``benchmark/records/cpu.py``) takes other kernels, and after a few epochs two trainings of the same
seed differ about as much as two seeds do. So a deep record re-trained elsewhere is accepted when
each primary metric (AUC per lesion, Harrell's C per patient) lies within

    tolerance = max(K x s, FLOOR),   K = 4, FLOOR = 0.02,

of the committed one, where ``s`` is the model's seed-to-seed standard deviation, pooled over its
cohorts and tasks (root mean of the per-(cohort, task) variances over seeds). ``s`` comes from
the re-trained runs when verify re-trains two or more seeds of the model (a new model's records
are all re-trained: its submitter does not choose the spread that judges it), else from the
committed records, which were judged this way when they landed.

Two runs of one model differ by about sqrt(2) x s, so K = 4 puts the bound at 2.8 of their
standard deviations: an honest record fails one comparison in about 200 (a model's 3 seeds x
3 cohorts: about 1 in 20 re-trainings of a whole model), while a forged figure must stay within
4 seed spreads (cnn3d: s ~ 0.03, so +-0.12 AUC) of what the code really gives. Exact comparison
stays where the CPU type matches.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

from benchmark.leaderboard.predictions import PRIMARY_METRIC

K = 4.0
FLOOR = 0.02
# Without two seeds to measure the spread (a model with one record), a fixed bound.
WITHOUT_SPREAD = 0.05


def primary_values(record: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    """(cohort, task) -> the task's primary metric value, where computable."""
    values = {}
    for cohort, tasks in record["metrics"].items():
        for task, metrics in tasks.items():
            value = (metrics.get(PRIMARY_METRIC.get(task, "")) or {}).get("value")
            if value is not None:
                values[(cohort, task)] = float(value)
    return values


def seed_spread(records: Iterable[Mapping[str, Any]]) -> float | None:
    """Pooled seed-to-seed sd of the primary metrics of one model's records (None: < 2 seeds)."""
    by_key: dict[tuple[str, str], list[float]] = {}
    for record in records:
        for key, value in primary_values(record).items():
            by_key.setdefault(key, []).append(value)
    variances = [statistics.variance(v) for v in by_key.values() if len(v) >= 2]
    return math.sqrt(statistics.fmean(variances)) if variances else None


def deep_tolerance(spread: float | None) -> float:
    """The bound for one metric: K x spread, at least FLOOR (``WITHOUT_SPREAD`` without one)."""
    return WITHOUT_SPREAD if spread is None else max(K * spread, FLOOR)


def largest_difference(committed: Mapping[str, Any], rerun: Mapping[str, Any]) -> float:
    """max |re-run - committed| over the primary metrics both runs computed."""
    ours, theirs = primary_values(committed), primary_values(rerun)
    return max((abs(ours[k] - theirs[k]) for k in set(ours) & set(theirs)), default=0.0)


def first_outside(
    committed: Mapping[str, Any], rerun: Mapping[str, Any], tolerance: float
) -> str | None:
    """The first primary metric of ``rerun`` further than ``tolerance`` from ``committed``."""
    ours, theirs = primary_values(committed), primary_values(rerun)
    for key in sorted(set(ours) | set(theirs)):
        if key not in ours or key not in theirs:
            return f"{key[0]}/{key[1]}: computable in one run only"
        if abs(ours[key] - theirs[key]) > tolerance:
            return (
                f"{key[0]}/{key[1]} {PRIMARY_METRIC[key[1]]}: committed {ours[key]:.4f}, "
                f"re-trained {theirs[key]:.4f} (|difference| > {tolerance:.3f})"
            )
    return None


__all__ = [
    "FLOOR",
    "K",
    "deep_tolerance",
    "first_outside",
    "largest_difference",
    "primary_values",
    "seed_spread",
]
