"""The tabular draw of one cohort: patients, lesions, outcomes, truth and the hidden variables.

Fast and image-free, so analyses of the tables need no rendering; images follow from
``SimulatedTables.render_spec``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from benchmark.api.cohort import ARMS
from benchmark.data.simulator.grid import grid_of
from benchmark.data.simulator.latent import draw_latent
from benchmark.data.simulator.outcomes import (
    MONTHS_PER_WEEK,
    calibration,
    observed_pfs,
    patient_uniforms,
    pd_logit,
    unit_event_times,
)
from benchmark.data.simulator.profiles import SITES, cohort_settings, resolve_profile
from benchmark.data.simulator.streams import STREAM_TABLES, check_seed, cohort_code, stream_rng

_MIN_MONTHS = 0.05


@dataclass(frozen=True)
class SimulatedTables:
    """One simulated cohort without images: what is written as tables, and what drives the images.

    ``patients``/``lesions``/``truth_*`` hold exactly the columns written to disk. ``latent``
    (one row per lesion) and ``patient_latent`` hold the hidden variables; ``acquisition`` the
    cohort's scanner profile with the derived image ``shape`` (x, y, z) and ``origin``.
    """

    cohort: str
    seed: int
    patients: pd.DataFrame
    lesions: pd.DataFrame
    truth_lesions: pd.DataFrame
    truth_patients: pd.DataFrame
    latent: pd.DataFrame
    patient_latent: pd.DataFrame
    acquisition: dict[str, Any]
    fov_mm: tuple[float, float, float]
    anatomy: dict[str, Any] = field(default_factory=dict)  # optional realism (simulator/lung.py)

    def render_spec(self, index: int) -> dict[str, Any]:
        """Everything the renderer needs for patient number ``index`` (picklable, small)."""
        pid = self.patients["patient_id"].iloc[index]
        rows = self.latent[self.latent["patient_id"] == pid]
        return {
            "cohort": self.cohort,
            "seed": self.seed,
            "index": int(index),
            "patient_id": pid,
            "acquisition": dict(self.acquisition),
            "fov_mm": list(self.fov_mm),
            "anatomy": copy.deepcopy(self.anatomy),
            "lesions": rows.to_dict("records"),
        }


def _simulate_cohort(name: str, cfg: Mapping[str, Any], seed: int, fov) -> SimulatedTables:
    reference = calibration(name, cfg)
    rng = stream_rng(seed, cohort_code(name), STREAM_TABLES)
    arms = np.concatenate([np.repeat(arm, int(cfg["arms"].get(arm, 0))) for arm in ARMS])
    arms = arms[rng.permutation(len(arms))]
    n = len(arms)
    pat, les = draw_latent(rng, arms, cfg)

    # Per-lesion PD: latent growth with logistic noise; pd ~ Bernoulli(p_pd) exactly.
    logit = pd_logit(pat, les, reference.pd_intercept, cfg)
    p_pd = special.expit(logit)
    eps = special.logit(np.clip(les["pd_noise"], 1e-12, 1 - 1e-12))
    pd_flag = logit + eps >= 0
    threshold = np.log(np.maximum(1.2, 1.0 + 5.0 / les["diameter_mm"]))
    interval = pat["interval_weeks"][les["pidx"]] / 10.0
    growth = threshold + interval * cfg["pd"]["growth_scale"] * (logit + eps)

    # OS and PFS: Weibull PH, each arm's scales from the reference draw, independent uniforms per
    # patient (a stream each), a Gaussian copula between progression and death; PFS = min(both).
    surv = cfg["survival"]
    draws = patient_uniforms(seed, name, n)
    unit_os, unit_pfs, lp_os_x, lp_pfs_x = unit_event_times(pat, *draws, cfg)
    scales = reference.scales
    scale_os = np.array([scales[arm][0] for arm in arms])
    scale_pfs = np.array([scales[arm][1] for arm in arms])
    death = scale_os * unit_os
    # Progression is seen at the CT that shows it (the first follow-up, then every few weeks).
    first_ct = pat["interval_weeks"] * MONTHS_PER_WEEK
    progression = observed_pfs(scale_pfs * unit_pfs, death, first_ct, cfg["pd"]["assessment_weeks"])

    cens = cfg["censoring"]
    admin = cens["min_followup_months"] + cens["accrual_months"] * rng.random(n)
    loss_rate = cens["loss_per_month"]
    loss = rng.exponential(1.0 / loss_rate, n) if loss_rate > 0 else np.full(n, np.inf)
    censor = np.minimum(admin, loss)
    os_months = np.maximum(np.round(np.minimum(death, censor), 2), _MIN_MONTHS)
    pfs_months = np.minimum(
        np.maximum(np.round(np.minimum(progression, censor), 2), _MIN_MONTHS), os_months
    )
    os_event = (death <= censor).astype(int)
    pfs_event = (progression <= censor).astype(int)

    # True linear predictors: covariates + the arm effect implied by the calibrated scales
    # (relative to the first arm present, io unless the cohort has none).
    ref = next(arm for arm in ARMS if arm in scales)
    k_os, k_pfs = surv["os"]["shape"], surv["pfs"]["shape"]
    lp_os = lp_os_x + k_os * (np.log(scales[ref][0]) - np.log(scale_os))
    lp_pfs = lp_pfs_x + k_pfs * (np.log(scales[ref][1]) - np.log(scale_pfs))

    prefix = cfg["prefix"]
    width = max(3, len(str(n)))
    pids = np.array([f"{prefix}-{i + 1:0{width}d}" for i in range(n)])
    lesion_pid = pids[les["pidx"]]
    labels = les["slot"] + 1
    lids = np.array([f"{p}-L{k}" for p, k in zip(lesion_pid, labels, strict=True)])
    site_names = np.array(SITES)[les["site"]]

    tps = pd.array(
        [pd.NA if miss else int(t) for t, miss in zip(pat["tps"], pat["tps_missing"], strict=True)],
        dtype="Int64",
    )
    patients = pd.DataFrame(
        {
            "patient_id": pids,
            "arm": arms,
            "pdl1_tps": tps,
            "age": pat["age"],
            "sex": np.where(pat["male"], "M", "F"),
            "ecog": pat["ecog"],
            "os_months": os_months,
            "os_event": os_event,
            "pfs_months": pfs_months,
            "pfs_event": pfs_event,
        }
    )
    lesions = pd.DataFrame(
        {
            "lesion_id": lids,
            "patient_id": lesion_pid,
            "mask_label": labels,
            "site": site_names,
            "irradiated": les["irradiated"].astype(int),
            "pd": pd_flag.astype(int),
        }
    )
    truth_lesions = pd.DataFrame({"lesion_id": lids, "p_pd": p_pd})
    truth_patients = pd.DataFrame({"patient_id": pids, "lp_os": lp_os, "lp_pfs": lp_pfs})
    latent = pd.DataFrame(
        {
            "lesion_id": lids,
            "patient_id": lesion_pid,
            "patient_index": les["pidx"],
            "mask_label": labels,
            "site": site_names,
            "irradiated": les["irradiated"].astype(int),
            "aggressiveness": les["aggressiveness"],
            "peritumoral": les["peritumoral"],
            "hidden": les["hidden"],
            "diameter_mm": les["diameter_mm"],
            "lobulation": les["lobulation"],
            "n_spicules": les["n_spicules"],
            "spicule_mm": les["spicule_mm"],
            "texture_hu": les["texture_hu"],
            "necrosis": les["necrosis"],
            "halo_mm": les["halo_mm"],
            "halo_density": les["halo_density"],
            "tumour_hu": les["tumour_hu"],
            "log_growth": growth,
            "diameter_followup_mm": les["diameter_mm"] * np.exp(growth),
            "p_pd": p_pd,
            "pd": pd_flag.astype(int),
        }
    )
    patient_latent = pd.DataFrame(
        {
            "patient_id": pids,
            "arm": arms,
            "pdl1_tps_true": pat["tps"],
            "patient_effect": pat["u"],
            "interval_weeks": pat["interval_weeks"],
            "n_lesions": pat["n_lesions"],
            "log_volume_ml": pat["log_volume"],
            "mean_aggressiveness": pat["mean_aggressiveness"],
            "mean_peritumoral": pat["mean_peritumoral"],
            "death_months": death,
            "progression_months": progression,
            "censor_months": censor,
            "lp_os": lp_os,
            "lp_pfs": lp_pfs,
        }
    )
    acquisition = {**copy.deepcopy(dict(cfg["acquisition"])), **grid_of(cfg["acquisition"], fov)}
    return SimulatedTables(
        cohort=name,
        seed=int(seed),
        patients=patients,
        lesions=lesions,
        truth_lesions=truth_lesions,
        truth_patients=truth_patients,
        latent=latent,
        patient_latent=patient_latent,
        acquisition=acquisition,
        fov_mm=tuple(float(f) for f in fov),
        anatomy=copy.deepcopy(dict(cfg.get("anatomy") or {})),
    )


def simulate_tables(profile: Mapping[str, Any] | str, seed: int) -> dict[str, SimulatedTables]:
    """All cohorts' tables and latent variables, without images (fast: well under a second)."""
    prof = resolve_profile(profile)
    seed = check_seed(seed)
    return {
        name: _simulate_cohort(name, cohort_settings(prof, name), seed, prof["fov_mm"])
        for name in prof["cohorts"]
    }
