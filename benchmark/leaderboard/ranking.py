"""Pooled CIs over seeds and ranks with their uncertainty, from paired patient resamples.

Every model is scored on literally the same bootstrap resamples of the patients (the ones
``benchmark.evaluation.metrics`` draws for the protocol's ``bootstrap.seed`` and ``n_boot``, so a
model with one seed gets back exactly the CI in its record). For each resample:

- a model's value is the mean over its seeds of the primary metric (AUC for ``lesion_pd``,
  Harrell's C for ``os``/``pfs``); the **pooled 95% CI** is the BCa interval of that seed-mean
  over the resamples (its jackknife: the seed-mean of the leave-one-patient-out values);
- the models are ranked (1 = best, ties share the average rank); the **rank interval** is the
  2.5-97.5 percentile range of a model's rank over the resamples, ``p_best`` the share of
  resamples where it ranks first;
- the **difference to the top model** is the paired difference of seed-means, with its
  BCa CI (for single-seed models this is
  ``benchmark.evaluation.metrics.paired_bootstrap_difference``;
  tests/leaderboard/test_leaderboard.py checks that they agree).

The per-resample values come from ``benchmark.evaluation.metrics``' own bootstrap code
(:func:`benchmark.evaluation.metrics.bootstrap_replicates`, the resamples behind every CI it
reports).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from benchmark.evaluation.metrics import Replicates, bootstrap_interval, bootstrap_replicates
from benchmark.leaderboard.predictions import PRIMARY_METRIC

Interval = tuple[float, float]


def replicates(task: str, group: pd.DataFrame, n_boot: int, seed: int) -> Replicates:
    """The task's primary metric on ``n_boot`` patient resamples of one (cohort, task) slice.

    Resample units as in ``benchmark.evaluation.scoring``: the patients in sorted id order (for
    lesions a cluster bootstrap: a resampled patient brings all of their lesions), so the row order
    of the slice does not matter and every model is paired on the same patients.
    """
    prediction = group["prediction"].to_numpy(float)
    patient_id = group["patient_id"].to_numpy()
    if task == "lesion_pd":
        outcome = {"label": group["label"].to_numpy(float)}
    else:
        time, event = group["time"].to_numpy(float), group["event"].to_numpy(float)
        outcome = {"time": time, "event": event, "train_time": time, "train_event": event}
    return bootstrap_replicates(
        PRIMARY_METRIC[task], prediction, patient_id=patient_id, n_boot=n_boot, seed=seed, **outcome
    )


def resample_ci(boot: np.ndarray, value: float, jackknife: np.ndarray) -> Interval | None:
    """95% interval (as ``benchmark.evaluation.metrics`` makes every CI) over the finite resamples;
    None if fewer than half are finite (the rule ``benchmark.evaluation.metrics`` applies to every
    CI)."""
    ok = boot[np.isfinite(boot)]
    if boot.size == 0 or 2 * ok.size < boot.size:
        return None
    return bootstrap_interval(ok, value, jackknife)[0]


@dataclass(frozen=True)
class Standing:
    """One model on one (cohort, task): value over seeds, pooled CI, rank and its uncertainty."""

    model: str
    seeds: tuple[int, ...]
    value: float | None  # mean over seeds of the point estimates
    sd: float | None  # across seeds (ddof=1); None with one seed
    ci95: Interval | None  # pooled: CI of the seed-mean over the shared resamples
    rank: int | None  # by ``value``, 1 = best; ties share the lowest rank
    rank_median: float | None
    rank_ci95: Interval | None
    p_best: float | None
    diff_to_top: float | None  # value - the top model's value; None for the top model
    diff_ci95: Interval | None
    not_computable: str | None = None


def _aligned(group: pd.DataFrame, order: pd.Index, where: str) -> pd.DataFrame:
    ids = pd.Index(group["id"])
    if len(ids) != len(order) or set(ids) != set(order):
        raise ValueError(f"{where}: predicted ids differ from the other models' (another dataset?)")
    return group.set_index("id").loc[order].reset_index()


@dataclass(frozen=True)
class SeedMean:
    """One model's primary metric averaged over its seeds, on every shared resample."""

    values: list[float]  # one point estimate per seed
    boot: np.ndarray  # seed-mean per resample
    jackknife: np.ndarray  # seed-mean per left-out patient
    reason: str | None = None  # why a seed's metric is not computable (then nothing else is set)

    @property
    def value(self) -> float:
        return float(np.mean(self.values))

    @property
    def ci95(self) -> Interval | None:
        return resample_ci(self.boot, self.value, self.jackknife)

    def minus(self, other: SeedMean) -> tuple[float, Interval | None]:
        """Paired difference ``self - other`` with its CI (same resamples, same patients)."""
        diff = self.value - other.value
        return diff, resample_ci(self.boot - other.boot, diff, self.jackknife - other.jackknife)


def seed_mean(
    task: str,
    seeds: Sequence[tuple[int, pd.DataFrame]],
    order: pd.Index,
    *,
    n_boot: int,
    seed: int,
    where: str = "model",
) -> SeedMean:
    """The seed-mean of a model's runs ``[(seed, slice)]``, rows aligned to the ids ``order``."""
    reps = [
        replicates(task, _aligned(g, order, f"{where} seed {s}"), n_boot, seed) for s, g in seeds
    ]
    failed = next((r for r in reps if r.value is None), None)
    if failed is not None:
        return SeedMean([], np.empty(0), np.empty(0), failed.reason)
    return SeedMean(
        [r.value for r in reps],
        np.mean([r.boot for r in reps], axis=0),
        np.mean([r.jackknife for r in reps], axis=0),
    )


def seed_means(
    task: str,
    runs: Mapping[str, Sequence[tuple[int, pd.DataFrame]]],
    *,
    n_boot: int,
    seed: int,
) -> dict[str, SeedMean]:
    """Every model's :class:`SeedMean` on the shared resamples, rows aligned to the ids of the
    first model (by name); kept so that any pair of models can be differenced later."""
    models = sorted(runs)
    if not models:
        return {}
    order = pd.Index(runs[models[0]][0][1]["id"])
    return {
        model: seed_mean(task, runs[model], order, n_boot=n_boot, seed=seed, where=model)
        for model in models
    }


def rank_models(
    task: str,
    runs: Mapping[str, Sequence[tuple[int, pd.DataFrame]]],
    *,
    n_boot: int,
    seed: int,
) -> list[Standing]:
    """Standings of ``runs`` (model -> [(seed, that seed's slice of predictions)]), best first.

    A model whose metric is not computable for some seed is listed last, unranked, with the
    reason. Every model and seed must predict the same ids (``ValueError`` otherwise).
    """
    seeds = {model: tuple(s for s, _ in found) for model, found in runs.items()}
    return rank_seed_means(seeds, seed_means(task, runs, n_boot=n_boot, seed=seed))


def rank_seed_means(
    seeds: Mapping[str, Sequence[int]], found_means: Mapping[str, SeedMean]
) -> list[Standing]:
    """Standings from :func:`seed_means` (``seeds``: model -> its model seeds), best first."""
    models = sorted(found_means)
    if not models:
        return []
    means: dict[str, SeedMean] = {}
    out: dict[str, dict] = {}
    for model in models:
        found = found_means[model]
        base = {"model": model, "seeds": tuple(seeds[model])}
        if found.reason is not None:
            out[model] = {**base, "value": None, "sd": None, "ci95": None}
            out[model]["not_computable"] = found.reason
            continue
        means[model] = found
        out[model] = {
            **base,
            "value": found.value,
            "sd": float(np.std(found.values, ddof=1)) if len(found.values) > 1 else None,
            "ci95": found.ci95,
        }

    ranked = sorted(means, key=lambda m: (-out[m]["value"], m))
    if ranked:
        point = rankdata([-out[m]["value"] for m in ranked], method="min")
        matrix = np.vstack([means[m].boot for m in ranked])
        usable = matrix[:, np.isfinite(matrix).all(axis=0)]
        ranks = rankdata(-usable, axis=0, method="average") if usable.size else None
        top = ranked[0]
        for i, model in enumerate(ranked):
            stats = out[model]
            stats["rank"] = int(point[i])
            if ranks is not None and ranks.shape[1] > 0:
                stats["rank_median"] = float(np.median(ranks[i]))
                stats["rank_ci95"] = (
                    float(np.percentile(ranks[i], 2.5, method="lower")),
                    float(np.percentile(ranks[i], 97.5, method="higher")),
                )
                stats["p_best"] = float(np.mean(ranks[i] == 1.0))
            if model != top:
                stats["diff_to_top"], stats["diff_ci95"] = means[model].minus(means[top])
    defaults = {
        "rank": None,
        "rank_median": None,
        "rank_ci95": None,
        "p_best": None,
        "diff_to_top": None,
        "diff_ci95": None,
        "not_computable": None,
    }
    unranked = sorted(set(models) - set(ranked))
    return [Standing(**{**defaults, **out[m]}) for m in [*ranked, *unranked]]
