"""Model-free calibration: what the simulator's truth says over many data seeds, no images.

The oracle (each lesion's true p(PD), each patient's true linear predictor) is the best any
model can do on a draw; its spread over data seeds is the spread a real trial of that size would
show, and a large draw gives the population value every finite trial estimates.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage
from sklearn.metrics import roc_auc_score
from sksurv.metrics import concordance_index_censored
from sksurv.nonparametric import kaplan_meier_estimator

from benchmark.calibration.study import PUBLISHED_MEDIANS, PublishedMedian
from benchmark.data.simulator import render_patient, resolve_profile, simulate_tables
from benchmark.data.simulator.profiles import cohort_settings

POPULATION_SEED = 10**6  # the large draw's data seed: far from any seed a user would pick
POPULATION_FACTOR = 100  # the large draw has this many times each arm's patients


def scaled(profile: Mapping[str, Any], factor: int) -> dict[str, Any]:
    """The profile with every arm ``factor`` times larger (same biology, same acquisition)."""
    big = copy.deepcopy(resolve_profile(profile))
    for cohort in big["cohorts"].values():
        cohort["arms"] = {arm: count * factor for arm, count in cohort["arms"].items()}
    return big


def oracle_auc(tables) -> float:
    return float(roc_auc_score(tables.latent["pd"], tables.latent["p_pd"]))


def oracle_c(tables, task: str) -> float:
    p = tables.patients
    event, time = p[f"{task}_event"].to_numpy(bool), p[f"{task}_months"].to_numpy(float)
    return float(concordance_index_censored(event, time, tables.truth_patients[f"lp_{task}"])[0])


def population_values(profile: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """cohort -> {lesion_pd, os, pfs}: the oracle's AUC / Harrell's C on one large draw."""
    tables = simulate_tables(scaled(profile, POPULATION_FACTOR), POPULATION_SEED)
    return {
        name: {"lesion_pd": oracle_auc(t), "os": oracle_c(t, "os"), "pfs": oracle_c(t, "pfs")}
        for name, t in tables.items()
    }


def oracle_over_seeds(profile: Mapping[str, Any], seeds: Sequence[int]) -> pd.DataFrame:
    """One row per (seed, cohort): the oracle's AUC and Harrell's C for OS and PFS."""
    rows = []
    for seed in seeds:
        for name, t in simulate_tables(profile, seed).items():
            rows.append(
                {
                    "seed": seed,
                    "cohort": name,
                    "lesion_pd": oracle_auc(t),
                    "os": oracle_c(t, "os"),
                    "pfs": oracle_c(t, "pfs"),
                }
            )
    return pd.DataFrame(rows)


def km_median(time: np.ndarray, event: np.ndarray) -> float:
    """Kaplan-Meier median (first time S <= 0.5); NaN when not reached."""
    t, s = kaplan_meier_estimator(np.asarray(event, bool), np.asarray(time, float))
    below = np.flatnonzero(s <= 0.5)
    return float(t[below[0]]) if len(below) else float("nan")


def km_medians(
    profile: Mapping[str, Any], seeds: Sequence[int]
) -> list[tuple[PublishedMedian, list[float]]]:
    """For every published median, the simulated Kaplan-Meier median of each seed."""
    found: list[tuple[PublishedMedian, list[float]]] = [(m, []) for m in PUBLISHED_MEDIANS]
    for seed in seeds:
        tables = simulate_tables(profile, seed)
        for published, values in found:
            p = tables[published.cohort].patients
            arm = p[p["arm"] == published.arm]
            ep = published.endpoint
            values.append(km_median(arm[f"{ep}_months"], arm[f"{ep}_event"]))
    return found


@dataclass(frozen=True)
class SurvivalRoom:
    """How much of the true risk is imaging: Harrell's C of the imaging part of the true linear
    predictor (burden, aggressiveness, margin) against the whole (+ PD-L1, arm, ECOG, age)."""

    task: str
    imaging_c: float
    full_c: float

    @property
    def room(self) -> float:
        return self.full_c - self.imaging_c


def survival_room(
    profile: Mapping[str, Any], seeds: Sequence[int], cohort: str = "pembro_rt"
) -> list[SurvivalRoom]:
    prof = resolve_profile(profile)
    coef = cohort_settings(prof, cohort)["survival"]
    out = []
    for task in ("os", "pfs"):
        imaging, full = [], []
        for seed in seeds:
            t = simulate_tables(prof, seed)[cohort]
            lat, p = t.patient_latent, t.patients
            part = (
                coef[task]["log_volume"] * (lat["log_volume_ml"] - np.log(20.0))
                + coef[task]["aggressiveness"] * lat["mean_aggressiveness"]
                + coef[task]["peritumoral"] * lat["mean_peritumoral"]
            )
            event, time = p[f"{task}_event"].to_numpy(bool), p[f"{task}_months"].to_numpy(float)
            imaging.append(concordance_index_censored(event, time, part)[0])
            full.append(concordance_index_censored(event, time, lat[f"lp_{task}"])[0])
        out.append(SurvivalRoom(task, float(np.mean(imaging)), float(np.mean(full))))
    return out


@dataclass(frozen=True)
class MarginLeak:
    """How much of the peritumoral margin reaches the mask's voxels through the scanner's blur.

    Each patient is rendered twice, with and without margins (same placement, same noise), so
    the image difference is the margin after the PSF and slice profile. ``inside_hu`` is the mean
    shift of a lesion's mask voxels, ``shell_hu`` that of the voxels within 3 mm outside the
    mask, ``ratio`` their median ratio over lesions; ``width_correlation`` is the Spearman
    correlation, over lesions, of the shift inside the mask with the margin's width (its signal):
    near 0 means what leaks is the nuisance density next to the surface, not the signal.
    """

    cohort: str
    n_lesions: int
    inside_hu: float
    shell_hu: float
    ratio: float
    width_correlation: float


def margin_leak(
    profile: Mapping[str, Any], seed: int = 0, n_patients: int = 24, cohort: str = "pembro_rt"
) -> MarginLeak:
    tables = simulate_tables(profile, seed)[cohort]
    inside, shell, widths = [], [], []
    for index in range(min(n_patients, len(tables.patients))):
        with_margin = render_patient(tables, index)
        without = render_patient(tables, index, peritumoral=False)
        delta = np.abs(with_margin.image.astype(float) - without.image.astype(float))
        spacing = np.asarray(with_margin.spacing)[::-1]
        pid = tables.patients["patient_id"].iloc[index]
        lesions = tables.latent[tables.latent["patient_id"] == pid]
        for _, lesion in lesions.iterrows():
            mask = with_margin.mask == lesion["mask_label"]
            distance = ndimage.distance_transform_edt(~mask, sampling=spacing)
            near = (distance > 0) & (distance <= 3.0) & (with_margin.mask == 0)
            inside.append(delta[mask].mean())
            shell.append(delta[near].mean())
            widths.append(lesion["halo_mm"])
    inside_a, shell_a = np.asarray(inside), np.asarray(shell)
    ratio = np.median(inside_a / np.maximum(shell_a, 1e-9))
    rho = pd.Series(inside_a).corr(pd.Series(widths), method="spearman")
    return MarginLeak(
        cohort,
        len(inside),
        float(inside_a.mean()),
        float(shell_a.mean()),
        float(ratio),
        float(rho),
    )
