"""From latent biology to labels: per-lesion p(PD) and Weibull event times, calibrated to targets.

The calibrations (growth intercept per cohort, Weibull scales per arm) make each profile's PD
rate and median OS / PFS what the profile says, whatever the covariate coefficients are. Both are
set once, on a large reference draw of the cohort (fixed seed, independent of the data seed), so
a dataset's patients are independent draws and its rates and medians vary from seed to seed as a
real trial's would.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import optimize, special

from benchmark.api.cohort import ARMS
from benchmark.data.simulator.latent import draw_latent
from benchmark.data.simulator.streams import (
    STREAM_OUTCOMES,
    STREAM_REFERENCE,
    cohort_code,
    stream_rng,
)

_REFERENCE_SEED = 20260401  # the calibration draw: fixed, independent of the data seed
_N_REFERENCE = 20000  # reference patients per arm
MONTHS_PER_WEEK = 12.0 / 52.1775


def pd_logit(pat: Mapping, les: Mapping, intercept: float, cfg: Mapping) -> np.ndarray:
    """logit p(PD) of each lesion given the growth intercept (calibrated here, used by the draw)."""
    p = cfg["pd"]
    i = les["pidx"]
    threshold = np.log(np.maximum(1.2, 1.0 + 5.0 / les["diameter_mm"]))
    interval = pat["interval_weeks"][i] / 10.0
    eta = (
        intercept
        + p["aggressiveness"] * les["aggressiveness"]
        + p["peritumoral"] * les["peritumoral"]
        + p["hidden"] * les["hidden"]
        + p["pdl1"] * pat["pdl1_score"][i]
        + p["abscopal"] * pat["sabr"][i]
    )
    free = (eta - threshold / interval) / p["growth_scale"]
    irr = p["irradiated"]
    local = (
        special.logit(irr["failure"])
        + irr["aggressiveness"] * les["aggressiveness"]
        + irr["peritumoral"] * les["peritumoral"]
        + irr["hidden"] * les["hidden"]
    )
    return np.where(les["irradiated"], local, free)


def _linear_predictor(pat: Mapping, coef: Mapping) -> np.ndarray:
    """Covariate part of the Weibull PH linear predictor (the arm enters through the scale)."""
    return (
        coef["pdl1"] * pat["pdl1_score"]
        + coef["log_volume"] * (pat["log_volume"] - np.log(20.0))
        + coef["aggressiveness"] * pat["mean_aggressiveness"]
        + coef["peritumoral"] * pat["mean_peritumoral"]
        + coef["ecog"] * pat["ecog"]
        + coef["age"] * (pat["age"] - 65.0) / 10.0
    )


def _weibull_unit(u: np.ndarray, lp: np.ndarray, shape: float) -> np.ndarray:
    """Event time with scale 1 whose survival probability is ``u``: S(t) = exp(-t^k e^lp)."""
    return (-np.log(u) * np.exp(-lp)) ** (1.0 / shape)


def _copula(u_os: np.ndarray, u_other: np.ndarray, rho: float) -> np.ndarray:
    z = rho * special.ndtri(u_os) + math.sqrt(1.0 - rho**2) * special.ndtri(u_other)
    return np.clip(special.ndtr(z), 1e-12, 1 - 1e-12)


@dataclass(frozen=True)
class Calibration:
    """What a cohort's reference draw fixes: the PD growth intercept, each arm's Weibull scales."""

    pd_intercept: float
    scales: dict[str, tuple[float, float]]  # arm -> (OS scale, PFS scale), months


def unit_event_times(
    pat: Mapping, u_os: np.ndarray, u_other: np.ndarray, cfg: Mapping
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(unit OS time, unit progression time, OS covariate LP, PFS covariate LP) of patients.

    Event times have scale 1 (each arm's scale multiplies them); progression and death are
    linked by a Gaussian copula with correlation ``survival.rho``.
    """
    surv = cfg["survival"]
    lp_os = _linear_predictor(pat, surv["os"])
    lp_pfs = _linear_predictor(pat, surv["pfs"])
    unit_os = _weibull_unit(u_os, lp_os, surv["os"]["shape"])
    unit_pfs = _weibull_unit(_copula(u_os, u_other, surv["rho"]), lp_pfs, surv["pfs"]["shape"])
    return unit_os, unit_pfs, lp_os, lp_pfs


def uniforms(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two independent uniforms per patient (OS, and the other margin of the copula)."""
    u = np.clip(rng.random((2, n)), 1e-12, 1 - 1e-12)
    return u[0], u[1]


def patient_uniforms(seed: int, cohort: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`uniforms` with one stream per patient: patient ``i``'s draw depends on (seed,
    cohort, i) only."""
    u = np.array(
        [stream_rng(seed, cohort_code(cohort), STREAM_OUTCOMES, i).random(2) for i in range(n)]
    )
    u = np.clip(u.reshape(n, 2), 1e-12, 1 - 1e-12)
    return u[:, 0], u[:, 1]


@lru_cache(maxsize=64)
def _calibration(cohort: str, settings_json: str) -> Calibration:
    """The growth intercept that makes the mean p(PD) the profile's ``pd.rate``, and the Weibull
    scales that put each arm's median OS and PFS on the profile's ``medians``, both on one large
    reference draw of the cohort (``_N_REFERENCE`` patients per arm)."""
    cfg = json.loads(settings_json)
    rng = stream_rng(_REFERENCE_SEED, cohort_code(cohort), STREAM_REFERENCE)
    arms = np.repeat(np.array(ARMS), _N_REFERENCE)
    pat, les = draw_latent(rng, arms, cfg)
    weight_arm = {arm: cfg["arms"].get(arm, 0) for arm in ARMS}
    total = sum(weight_arm.values())
    lesion_arm = pat["arm"][les["pidx"]]

    def gap(intercept: float) -> float:
        p = special.expit(pd_logit(pat, les, intercept, cfg))
        mean = sum(
            weight_arm[arm] / total * p[lesion_arm == arm].mean() for arm in ARMS if weight_arm[arm]
        )
        return mean - cfg["pd"]["rate"]

    intercept = optimize.brentq(gap, -20.0, 20.0, xtol=1e-10)
    unit_os, unit_pfs, _, _ = unit_event_times(pat, *uniforms(rng, len(arms)), cfg)
    first_ct = pat["interval_weeks"] * MONTHS_PER_WEEK
    every = cfg["pd"]["assessment_weeks"]
    scales = {
        arm: _arm_scales(
            unit_os[arms == arm],
            unit_pfs[arms == arm],
            cfg["medians"][arm],
            first_ct[arms == arm],
            every,
        )
        for arm in ARMS
        if weight_arm[arm]
    }
    return Calibration(float(intercept), scales)


def calibration(cohort: str, cfg: Mapping) -> Calibration:
    """The reference calibration of one cohort's settings (cached per settings)."""
    return _calibration(cohort, json.dumps(cfg, sort_keys=True))


def seen_at(progression: np.ndarray, first_ct: np.ndarray, every_weeks: float) -> np.ndarray:
    """When a progression is seen: at the first scheduled CT at or after it (months). CTs are at
    the patient's first follow-up (``first_ct``, months), then every ``every_weeks``."""
    step = every_weeks * MONTHS_PER_WEEK
    k = np.ceil(np.maximum(progression - first_ct, 0.0) / step - 1e-9)
    return first_ct + k * step


def observed_pfs(
    progression: np.ndarray, death: np.ndarray, first_ct: np.ndarray, every_weeks: float
) -> np.ndarray:
    """PFS as a trial records it: the CT that shows the progression, or death if earlier."""
    return np.minimum(seen_at(progression, first_ct, every_weeks), death)


def _arm_scales(
    unit_os: np.ndarray,
    unit_pfs: np.ndarray,
    target: Mapping[str, float],
    first_ct: np.ndarray,
    every_weeks: float,
):
    """Weibull scales of one arm that put its median OS, and its median PFS as observed (the CT
    that shows the progression, or death), on the targets (unit-scale event times of the arm's
    reference draw given). Observed PFS steps at the CT schedule, so its median lands on the
    schedule point nearest the target."""
    scale_os = target["os"] / np.median(unit_os)
    death = scale_os * unit_os

    def gap(log_scale: float) -> float:
        pfs = observed_pfs(np.exp(log_scale) * unit_pfs, death, first_ct, every_weeks)
        return math.log(np.median(pfs)) - math.log(target["pfs"])

    guess = math.log(target["pfs"] / np.median(unit_pfs))
    lo, hi = guess - 1.0, guess + 1.0
    while gap(lo) > 0:
        lo -= 1.0
    while gap(hi) < 0:
        hi += 1.0
    return scale_os, math.exp(optimize.brentq(gap, lo, hi, xtol=1e-12))
