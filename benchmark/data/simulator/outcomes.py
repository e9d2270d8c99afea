"""From latent biology to labels: per-lesion p(PD) and Weibull event times, calibrated to targets.

The calibrations (growth intercept per cohort, Weibull scales per arm) make each profile's PD
rate and median OS / PFS what the profile says, whatever the covariate coefficients are.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import lru_cache

import numpy as np
from scipy import optimize, special

from benchmark.cohort import ARMS
from benchmark.data.simulator.latent import _draw_latent
from benchmark.data.simulator.streams import _STREAM_REFERENCE, _code, _rng

_REFERENCE_SEED = 20260401  # the calibration draw: fixed, independent of the data seed
_N_REFERENCE = 20000  # reference patients per arm


def _pd_logit(pat: Mapping, les: Mapping, intercept: float, cfg: Mapping) -> np.ndarray:
    """logit p(PD) of each lesion (see the module docstring)."""
    p = cfg["pd"]
    i = les["pidx"]
    threshold = np.log(np.maximum(1.2, 1.0 + 5.0 / les["diameter_mm"]))
    interval = pat["interval_weeks"][i] / 10.0
    eta = (
        intercept
        + p["aggressiveness"] * les["aggressiveness"]
        + p["hidden"] * les["hidden"]
        + p["pdl1"] * pat["pdl1_score"][i]
        + p["abscopal"] * pat["sabr"][i]
    )
    free = (eta - threshold / interval) / p["growth_scale"]
    irr = p["irradiated"]
    local = (
        special.logit(irr["failure"])
        + irr["aggressiveness"] * les["aggressiveness"]
        + irr["hidden"] * les["hidden"]
    )
    return np.where(les["irradiated"], local, free)


def _linear_predictor(pat: Mapping, coef: Mapping) -> np.ndarray:
    """Covariate part of the Weibull PH linear predictor (the arm enters through the scale)."""
    return (
        coef["pdl1"] * pat["pdl1_score"]
        + coef["log_volume"] * (pat["log_volume"] - np.log(20.0))
        + coef["aggressiveness"] * pat["mean_aggressiveness"]
        + coef["ecog"] * pat["ecog"]
        + coef["age"] * (pat["age"] - 65.0) / 10.0
    )


def _weibull_unit(u: np.ndarray, lp: np.ndarray, shape: float) -> np.ndarray:
    """Event time with scale 1 whose survival probability is ``u``: S(t) = exp(-t^k e^lp)."""
    return (-np.log(u) * np.exp(-lp)) ** (1.0 / shape)


def _copula(u_os: np.ndarray, u_other: np.ndarray, rho: float) -> np.ndarray:
    z = rho * special.ndtri(u_os) + math.sqrt(1.0 - rho**2) * special.ndtri(u_other)
    return np.clip(special.ndtr(z), 1e-12, 1 - 1e-12)


@lru_cache(maxsize=64)
def _pd_intercept(cohort: str, settings_json: str) -> float:
    """Growth intercept of a cohort: mean p(PD) over a large reference draw equals the target."""
    cfg = json.loads(settings_json)
    rng = _rng(_REFERENCE_SEED, _code(cohort), _STREAM_REFERENCE)
    arms = np.repeat(np.array(ARMS), _N_REFERENCE)
    pat, les = _draw_latent(rng, arms, cfg)
    weight_arm = {arm: cfg["arms"].get(arm, 0) for arm in ARMS}
    total = sum(weight_arm.values())
    lesion_arm = pat["arm"][les["pidx"]]

    def gap(intercept: float) -> float:
        p = special.expit(_pd_logit(pat, les, intercept, cfg))
        mean = sum(
            weight_arm[arm] / total * p[lesion_arm == arm].mean() for arm in ARMS if weight_arm[arm]
        )
        return mean - cfg["pd"]["rate"]

    return optimize.brentq(gap, -5.0, 5.0, xtol=1e-10)


def _arm_scales(unit_os: np.ndarray, unit_pfs: np.ndarray, target: Mapping[str, float]):
    """Weibull scales of one arm that put its median OS, and its median PFS = min(progression,
    death), exactly on the targets for this draw (unit-scale event times given).

    Setting the scale on the arm's own draw removes the sampling noise of the covariates and of
    the event times from the medians; a Kaplan-Meier median then differs from the target only
    through censoring.
    """
    scale_os = target["os"] / np.median(unit_os)
    death = scale_os * unit_os

    def gap(log_scale: float) -> float:
        pfs = np.minimum(np.exp(log_scale) * unit_pfs, death)
        return math.log(np.median(pfs)) - math.log(target["pfs"])

    guess = math.log(target["pfs"] / np.median(unit_pfs))
    lo, hi = guess - 1.0, guess + 1.0
    while gap(lo) > 0:
        lo -= 1.0
    while gap(hi) < 0:
        hi += 1.0
    return scale_os, math.exp(optimize.brentq(gap, lo, hi, xtol=1e-12))


def _stratified(rng: np.random.Generator, k: int) -> np.ndarray:
    """Latin-hypercube uniforms: one in each of k equal strata, in random order."""
    return np.clip((rng.permutation(k) + rng.random(k)) / k, 1e-12, 1 - 1e-12)
