"""Do the harness's 95% CIs cover the population value 95% of the time? Checked on the oracle.

For each of N data seeds, the oracle's AUC (per lesion, patient-cluster bootstrap) and Harrell's
C (OS, PFS) are computed with the harness's own resamples, and their BCa and percentile intervals
are compared with the population value of one large draw. A coverage's own 95% interval
(Wilson) says how precisely N seeds pin it down.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import binomtest
from tqdm.auto import tqdm

from benchmark.calibration.truth import population_values
from benchmark.data.simulator import resolve_profile, simulate_tables
from benchmark.evaluation.metrics import bootstrap_interval, bootstrap_replicates
from benchmark.utils.pool import run_jobs

METRICS = {"lesion_pd": "auc", "os": "c_index", "pfs": "c_index"}


@dataclass(frozen=True)
class Coverage:
    cohort: str
    task: str
    method: str  # bca | percentile
    population: float
    n_seeds: int
    covered: int

    @property
    def rate(self) -> float:
        return self.covered / self.n_seeds

    @property
    def ci95(self) -> tuple[float, float]:
        interval = binomtest(self.covered, self.n_seeds).proportion_ci(method="wilson")
        return float(interval.low), float(interval.high)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rate": self.rate, "ci95": list(self.ci95)}


def _replicates(tables, task: str, n_boot: int, seed: int):
    if task == "lesion_pd":
        lat = tables.latent
        return bootstrap_replicates(
            "auc",
            lat["p_pd"].to_numpy(float),
            label=lat["pd"].to_numpy(float),
            patient_id=lat["patient_id"].to_numpy(),
            n_boot=n_boot,
            seed=seed,
        )
    p = tables.patients
    return bootstrap_replicates(
        "c_index",
        tables.truth_patients[f"lp_{task}"].to_numpy(float),
        time=p[f"{task}_months"].to_numpy(float),
        event=p[f"{task}_event"].to_numpy(float),
        patient_id=p["patient_id"].to_numpy(),
        n_boot=n_boot,
        seed=seed,
    )


def _seed_hits(
    profile: Mapping[str, Any],
    seed: int,
    population: Mapping[str, Mapping[str, float]],
    n_boot: int,
    boot_seed: int,
) -> dict[tuple[str, str, str], int]:
    """(cohort, task, method) -> 1 if that interval covers the population value on this seed."""
    hits = {}
    for name, tables in simulate_tables(profile, seed).items():
        for task in METRICS:
            rep = _replicates(tables, task, n_boot, boot_seed)
            boot = rep.boot[np.isfinite(rep.boot)]
            truth = population[name][task]
            for method, (lo, hi) in (
                ("bca", bootstrap_interval(boot, rep.value, rep.jackknife)[0]),
                ("percentile", bootstrap_interval(boot)[0]),
            ):
                hits[(name, task, method)] = int(lo <= truth <= hi)
    return hits


def coverage_study(
    profile: Mapping[str, Any],
    seeds: Sequence[int],
    *,
    n_boot: int = 1000,
    boot_seed: int = 0,
    workers: int = 1,
    progress: bool = True,
) -> list[Coverage]:
    """Coverage of the oracle's 95% CIs (BCa and percentile), per cohort and task.

    Seeds are independent, so ``workers > 1`` spreads them over processes; the counts are the
    same whatever ``workers`` is."""
    profile = resolve_profile(profile)
    population = population_values(profile)
    totals: dict[tuple[str, str, str], int] = {}
    jobs = [(profile, seed, population, n_boot, boot_seed) for seed in seeds]
    with tqdm(total=len(jobs), desc="coverage", unit="seed", disable=not progress) as bar:
        for _, hits in run_jobs(_seed_hits, jobs, workers):
            for key, hit in hits.items():
                totals[key] = totals.get(key, 0) + hit
            bar.update()
    return [
        Coverage(name, task, method, population[name][task], len(jobs), covered)
        for (name, task, method), covered in sorted(totals.items())
    ]
