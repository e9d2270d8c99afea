"""The built-in trial simulator: three synthetic cohorts shaped like PEMBRO-RT, NIVORAD and MDACC.

It writes the cohort layout of DESIGN section 3 (tables, CT images, instance masks) plus the truth
no submission sees (each lesion's true p(PD), each patient's true linear predictors)::

    <out>/<cohort>/patients.csv, lesions.csv, images/<pid>.nii.gz, masks/<pid>.nii.gz
    <out>/<cohort>/truth/lesions.csv      lesion_id, p_pd
    <out>/<cohort>/truth/patients.csv     patient_id, lp_os, lp_pfs
    <out>/dataset.json

The generative model, in order:

* **Patients**: arm (exact counts per profile, randomised order), age, sex, ECOG, PD-L1 TPS (a
  few percent written blank; the true value still acts), a patient random effect ``u``.
* **Lesions** (1-6 per patient) at ``SITES`` with per-site caps; each has a latent aggressiveness
  ``a = u + lesion noise`` and an invisible factor ``h``. ``a`` is *partly* visible: each image
  feature (size, lobulation, spiculation, internal texture, necrotic core, peritumoral halo) is a
  separate noisy readout of ``a``; ``h`` and the readout noise are not visible at all.
* **Per-lesion PD** (RECIST-like): a latent log-growth ``g`` over the first follow-up interval
  (8-12 weeks) with logistic noise; PD iff the diameter grows >= 20 % and >= 5 mm, so
  ``p_pd = expit((eta - threshold / interval) / scale)`` with ``eta`` linear in ``a``, ``h``,
  PD-L1 (protective), arm (small abscopal effect). The irradiated lesion (exactly one per io+sabr
  patient) fails locally with probability ~``pd.irradiated.failure``. The growth intercept is
  calibrated per cohort to the profile's PD rate.
* **OS / PFS**: Weibull proportional hazards with a linear predictor of PD-L1, tumour burden
  (log total volume), mean aggressiveness, ECOG, age. Event times use Latin-hypercube uniforms
  per arm and a Gaussian copula between progression and death; PFS = min(progression, death)
  <= OS. The Weibull scale of each arm is then calibrated on the arm's own draw so that its
  median OS and PFS equal the profile's targets (variance reduction: the Kaplan-Meier medians
  move only through censoring). Censoring is administrative (uniform accrual + minimum
  follow-up) plus a small random loss. The true linear predictors written to truth/ include the
  arm effect implied by the calibrated scales (higher = worse).
* **Images**: a per-patient thoracic / upper-abdominal phantom (body, subcutaneous fat, chest
  wall, ribs, sternum, lungs with faint vessels and a gravity gradient, mediastinal fat, trachea,
  heart, aorta, vertebra with discs and canal, diaphragm domes, liver, retroperitoneal fat,
  adrenals); each lesion is placed inside the structure of its site, without overlap, then the
  cohort's acquisition is applied: Gaussian PSF blur, (kernel-grained) noise, HU offset, int16.
  The mask holds each lesion's own voxels (before blur), labelled with its ``mask_label``.

Every random stream derives from ``numpy.random.SeedSequence`` of (seed, cohort, [patient]), so
the output depends on (profile, seed, ``GENERATOR_VERSION``) only, whatever ``workers`` is.
"""

from __future__ import annotations

import copy
import json
import math
import multiprocessing
import os
import re
import shutil
import socket
import uuid
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage, optimize, special
from tqdm import tqdm

from benchmark.cohort import ARMS

__all__ = [
    "ANATOMY_LABELS",
    "GENERATOR_NAME",
    "GENERATOR_VERSION",
    "SITES",
    "RenderedPatient",
    "SimulatedTables",
    "available_profiles",
    "load_profile",
    "render_patient",
    "resolve_profile",
    "simulate",
    "simulate_tables",
]

GENERATOR_NAME = "nsclc-io-bench-simulator"
GENERATOR_VERSION = "1.0.0"  # bump whenever the output for a (profile, seed) changes

SITES = ("lung", "lymph_node", "liver", "adrenal", "bone", "pleura")
CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "data"

# Tissue labels of the phantom (returned by render_patient for checks; never written to disk).
AIR, FAT, SOFT, LUNG, VESSEL, HEART, AORTA, CORTEX, MARROW, DISC, CANAL, LIVER, ADRENAL, AIRWAY = (
    range(14)
)
LESION, HALO = 20, 21
ANATOMY_LABELS = {
    "air": AIR,
    "fat": FAT,
    "soft_tissue": SOFT,
    "lung": LUNG,
    "vessel": VESSEL,
    "heart": HEART,
    "aorta": AORTA,
    "cortical_bone": CORTEX,
    "marrow": MARROW,
    "disc": DISC,
    "spinal_canal": CANAL,
    "liver": LIVER,
    "adrenal": ADRENAL,
    "airway": AIRWAY,
    "lesion": LESION,
    "halo": HALO,
}

_STREAM_TABLES, _STREAM_RENDER, _STREAM_REFERENCE = 0, 1, 2
_REFERENCE_SEED = 20260401  # the calibration draw: fixed, independent of the data seed
_N_REFERENCE = 20000  # reference patients per arm
_MIN_MONTHS = 0.05
_HU_RANGE = (-1024, 3071)


# --------------------------------------------------------------------------------------------
# Profiles


def _plain(obj: Any) -> Any:
    """Plain dict / list / scalar copy of a profile (OmegaConf nodes, mappings, numpy scalars)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(obj, DictConfig | ListConfig):
            return OmegaConf.to_container(obj, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, anything else in ``over`` replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_config(name: str, chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """conf/data/<name>.yaml with its Hydra defaults list (same group) merged like Hydra does."""
    from omegaconf import OmegaConf

    if name in chain:
        raise ValueError(f"conf/data defaults loop: {' -> '.join((*chain, name))}")
    path = CONF_DIR / f"{name}.yaml"
    raw = _plain(OmegaConf.load(path)) or {}
    defaults = raw.pop("defaults", [])
    merged: dict[str, Any] = {}
    self_done = False
    for entry in defaults:
        if entry == "_self_":
            merged, self_done = _merge(merged, raw), True
        elif isinstance(entry, str):
            merged = _merge(merged, _read_config(entry, (*chain, name)))
        else:
            raise ValueError(f"{path}: only same-group names are supported in defaults: {entry!r}")
    return merged if self_done else _merge(merged, raw)


def available_profiles() -> list[str]:
    """Names of the simulator profiles: conf/data/*.yaml files with a ``profile`` key."""
    names = []
    for path in sorted(CONF_DIR.glob("*.yaml")):
        try:
            if "profile" in _read_config(path.stem):
                names.append(path.stem)
        except Exception:  # noqa: BLE001 - a broken neighbour config is not a profile
            continue
    return names


def load_profile(name: str) -> dict[str, Any]:
    """The simulator profile ``conf/data/<name>.yaml:profile`` as a plain, fully merged dict."""
    if (
        not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", str(name))
        or not (CONF_DIR / f"{name}.yaml").is_file()
    ):
        raise ValueError(
            f"unknown simulator profile {name!r}; available: {', '.join(available_profiles())} "
            f"(the conf/data/*.yaml files with a `profile` key, in {CONF_DIR})"
        )
    config = _read_config(str(name))
    if "profile" not in config:
        raise ValueError(
            f"conf/data/{name}.yaml is not a simulator profile (no `profile` key; source="
            f"{config.get('source')!r}); available: {', '.join(available_profiles())}"
        )
    return config["profile"]


def resolve_profile(profile: Mapping[str, Any] | str) -> dict[str, Any]:
    """A profile name or mapping as a plain dict, checked, with each cohort's settings merged."""
    prof = load_profile(profile) if isinstance(profile, str) else _plain(profile)
    if not isinstance(prof, dict):
        raise TypeError(f"profile must be a name or a mapping, got {type(profile).__name__}")
    for key in ("fov_mm", "cohorts"):
        if key not in prof:
            raise ValueError(f"simulator profile {prof.get('name')!r} has no {key!r}")
    if not prof["cohorts"]:
        raise ValueError("simulator profile has no cohorts")
    for name in prof["cohorts"]:
        cfg = cohort_settings(prof, name)
        where = f"profile {prof.get('name')!r}, cohort {name!r}"
        if set(cfg.get("arms", {})) - set(ARMS) or sum(cfg["arms"].values()) < 1:
            raise ValueError(f"{where}: arms must be counts for {ARMS}, got {cfg.get('arms')}")
        for arm, count in cfg["arms"].items():
            if count > 0:
                pfs, os_ = cfg["medians"][arm]["pfs"], cfg["medians"][arm]["os"]
                if not 0 < pfs < os_:
                    raise ValueError(f"{where}: arm {arm} needs 0 < PFS median < OS median")
        if sum(cfg["lesions"]["max_per_site"][s] for s in SITES) < len(cfg["lesions"]["count"]):
            raise ValueError(f"{where}: max_per_site cannot hold the largest lesion count")
        if len(cfg["acquisition"]["spacing_mm"]) != 3:
            raise ValueError(f"{where}: acquisition.spacing_mm must be [x, y, z]")
    return prof


def cohort_settings(profile: Mapping[str, Any], cohort: str) -> dict[str, Any]:
    """One cohort's settings: the profile's ``defaults`` overridden by the cohort's entries."""
    return _merge(profile.get("defaults", {}), profile["cohorts"][cohort])


def _code(name: str) -> int:
    return zlib.crc32(name.encode())


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in keys]))


# --------------------------------------------------------------------------------------------
# Tables: latent biology, labels, outcomes


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
            "lesions": rows.to_dict("records"),
        }


def _probs(values: Sequence[float]) -> np.ndarray:
    p = np.asarray(values, float)
    if (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"bad probabilities {list(values)}")
    return p / p.sum()


def _draw_latent(
    rng: np.random.Generator, arms: np.ndarray, cfg: Mapping[str, Any]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Covariates and lesion biology (no outcome yet) for patients with the given arms."""
    n = len(arms)
    sabr = arms == "io+sabr"
    cl, pl, les, agg, app = (
        cfg["clinical"],
        cfg["pdl1"],
        cfg["lesions"],
        cfg["aggressiveness"],
        cfg["appearance"],
    )
    age = np.clip(np.rint(rng.normal(cl["age_mean"], cl["age_sd"], n)), *cl["age_range"])
    male = rng.random(n) < cl["male"]
    ecog = rng.choice(3, size=n, p=_probs(cl["ecog"]))
    category = rng.choice(3, size=n, p=_probs([pl["negative"], pl["low"], pl["high"]]))
    low, high = rng.integers(1, 50, n), rng.integers(50, 101, n)
    tps = np.where(category == 0, 0, np.where(category == 1, low, high)).astype(float)
    missing = rng.random(n) < pl["missing"]
    u = rng.normal(0.0, agg["patient_sd"], n)
    weeks = rng.uniform(*cfg["pd"]["interval_weeks"], n)
    counts = rng.choice(np.arange(1, len(les["count"]) + 1), size=n, p=_probs(les["count"]))

    # Sites, slot by slot, never above a site's cap within one patient.
    weights = np.array([les["sites"][s] for s in SITES], float)
    caps = np.array([les["max_per_site"][s] for s in SITES])
    used = np.zeros((n, len(SITES)), int)
    slots = np.full((n, counts.max(initial=1)), -1)
    for slot in range(slots.shape[1]):
        active = counts > slot
        w = weights[None, :] * (used < caps)
        cum = np.cumsum(w, axis=1)
        cum /= cum[:, -1:]
        pick = np.argmax(cum > rng.random(n)[:, None], axis=1)
        slots[active, slot] = pick[active]
        used[active, pick[active]] += 1
    pidx = np.repeat(np.arange(n), counts)
    slot = np.arange(len(pidx)) - np.repeat(np.cumsum(counts) - counts, counts)
    site = slots[pidx, slot]
    m = len(pidx)

    a = u[pidx] + rng.normal(0.0, agg["lesion_sd"], m)
    hidden = rng.normal(0.0, 1.0, m)
    z = rng.normal(0.0, app["readout_noise"], (6, m))

    # Longest diameter: lognormal around the site median, shifted by a, truncated (inverse CDF).
    median = np.array([les["median_diameter_mm"][s] for s in SITES])[site]
    mu = np.log(median) + app["size"] * a
    sd = les["log_diameter_sd"]
    dmin = np.where(
        site == SITES.index("lymph_node"),
        max(les["node_min_diameter_mm"], les["diameter_mm"][0]),
        les["diameter_mm"][0],
    )
    lo = special.ndtr((np.log(dmin) - mu) / sd)
    hi = special.ndtr((np.log(les["diameter_mm"][1]) - mu) / sd)
    q = lo + rng.random(m) * (hi - lo)
    diameter = np.clip(
        np.exp(mu + sd * special.ndtri(np.clip(q, 1e-12, 1 - 1e-12))), dmin, les["diameter_mm"][1]
    )

    # The visible readouts of a (each with its own noise).
    spic_site = np.array([app["spicule_sites"][s] for s in SITES])[site]
    lobulation = app["lobulation_max"] * special.expit(1.2 * a + z[0] - 0.3)
    spicule_rate = app["spicules_max"] * spic_site * special.expit(1.4 * a + z[1] - 1.0)
    n_spicules = rng.poisson(spicule_rate)
    s_lo, s_hi = app["spicule_mm"]
    spicule_mm = s_lo + (s_hi - s_lo) * special.expit(a + z[2])
    t_lo, t_hi = app["texture_hu"]
    texture_hu = t_lo + (t_hi - t_lo) * special.expit(1.2 * a + z[3])
    necrosis = (
        app["necrosis_max"]
        * special.expit(1.8 * (a + z[4]) - 1.6)
        * np.clip((diameter - 16.0) / 12.0, 0.0, 1.0)
    )
    halo_mm = app["halo_mm_max"] * special.expit(1.6 * (a + z[5]) - 1.4)
    tumour_hu = np.array([app["tumour_hu"][s] for s in SITES])[site] + rng.normal(
        0.0, app["tumour_hu_sd"], m
    )

    # One irradiated lesion per io+sabr patient, from the preferred sites when it has one.
    preferred = np.isin(site, [SITES.index(s) for s in les["irradiated_sites"]])
    key = rng.random(m) + (~preferred)
    order = np.lexsort((key, pidx))
    first = order[np.r_[0, np.flatnonzero(np.diff(pidx[order])) + 1]] if m else order
    irradiated = np.zeros(m, bool)
    irradiated[first[sabr[pidx[first]]]] = True

    pd_noise = rng.random(m)
    volume_ml = np.bincount(pidx, np.pi / 6.0 * diameter**3 / 1000.0, minlength=n)
    mean_a = np.bincount(pidx, a, minlength=n) / counts

    patients = {
        "arm": arms,
        "sabr": sabr,
        "age": age.astype(int),
        "male": male,
        "ecog": ecog,
        "tps": tps,
        "tps_missing": missing,
        "pdl1_score": np.log1p(tps) / np.log1p(100.0),
        "u": u,
        "interval_weeks": weeks,
        "n_lesions": counts,
        "log_volume": np.log(volume_ml),
        "mean_aggressiveness": mean_a,
    }
    lesions = {
        "pidx": pidx,
        "slot": slot,
        "site": site,
        "aggressiveness": a,
        "hidden": hidden,
        "diameter_mm": diameter,
        "lobulation": lobulation,
        "n_spicules": n_spicules,
        "spicule_mm": spicule_mm,
        "texture_hu": texture_hu,
        "necrosis": necrosis,
        "halo_mm": halo_mm,
        "tumour_hu": tumour_hu,
        "irradiated": irradiated,
        "pd_noise": pd_noise,
    }
    return patients, lesions


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


def _grid_of(acquisition: Mapping[str, Any], fov_mm: Sequence[float]) -> dict[str, Any]:
    spacing = [float(s) for s in acquisition["spacing_mm"]]
    shape = [int(math.ceil(f / s - 1e-9)) for f, s in zip(fov_mm, spacing, strict=True)]
    origin = [-(shape[0] - 1) * spacing[0] / 2.0, -(shape[1] - 1) * spacing[1] / 2.0, 0.0]
    return {"shape": shape, "origin": origin, "spacing_mm": spacing}


def _simulate_cohort(name: str, cfg: Mapping[str, Any], seed: int, fov) -> SimulatedTables:
    intercept = _pd_intercept(name, json.dumps(cfg, sort_keys=True))
    rng = _rng(seed, _code(name), _STREAM_TABLES)
    arms = np.concatenate([np.repeat(arm, int(cfg["arms"].get(arm, 0))) for arm in ARMS])
    arms = arms[rng.permutation(len(arms))]
    n = len(arms)
    pat, les = _draw_latent(rng, arms, cfg)

    # Per-lesion PD: latent growth with logistic noise; pd ~ Bernoulli(p_pd) exactly.
    logit = _pd_logit(pat, les, intercept, cfg)
    p_pd = special.expit(logit)
    eps = special.logit(np.clip(les["pd_noise"], 1e-12, 1 - 1e-12))
    pd_flag = logit + eps >= 0
    threshold = np.log(np.maximum(1.2, 1.0 + 5.0 / les["diameter_mm"]))
    interval = pat["interval_weeks"][les["pidx"]] / 10.0
    growth = threshold + interval * cfg["pd"]["growth_scale"] * (logit + eps)

    # OS and PFS: Weibull PH with per-arm scales calibrated to the medians, LHS uniforms per arm,
    # a Gaussian copula between progression and death; PFS = min(progression, death).
    surv = cfg["survival"]
    lp_os_x = _linear_predictor(pat, surv["os"])
    lp_pfs_x = _linear_predictor(pat, surv["pfs"])
    u_os, u_other = np.empty(n), np.empty(n)
    for arm in ARMS:
        idx = np.flatnonzero(arms == arm)
        u_os[idx] = _stratified(rng, len(idx))
        u_other[idx] = _stratified(rng, len(idx))
    u_pfs = _copula(u_os, u_other, surv["rho"])
    unit_os = _weibull_unit(u_os, lp_os_x, surv["os"]["shape"])
    unit_pfs = _weibull_unit(u_pfs, lp_pfs_x, surv["pfs"]["shape"])
    scales = {
        arm: _arm_scales(unit_os[arms == arm], unit_pfs[arms == arm], cfg["medians"][arm])
        for arm in ARMS
        if (arms == arm).any()
    }
    scale_os = np.array([scales[arm][0] for arm in arms])
    scale_pfs = np.array([scales[arm][1] for arm in arms])
    death = scale_os * unit_os
    progression = np.minimum(scale_pfs * unit_pfs, death)

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
            "hidden": les["hidden"],
            "diameter_mm": les["diameter_mm"],
            "lobulation": les["lobulation"],
            "n_spicules": les["n_spicules"],
            "spicule_mm": les["spicule_mm"],
            "texture_hu": les["texture_hu"],
            "necrosis": les["necrosis"],
            "halo_mm": les["halo_mm"],
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
            "death_months": death,
            "progression_months": progression,
            "censor_months": censor,
            "lp_os": lp_os,
            "lp_pfs": lp_pfs,
        }
    )
    acquisition = {**copy.deepcopy(dict(cfg["acquisition"])), **_grid_of(cfg["acquisition"], fov)}
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
    )


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def simulate_tables(profile: Mapping[str, Any] | str, seed: int) -> dict[str, SimulatedTables]:
    """All cohorts' tables and latent variables, without images (fast: well under a second)."""
    prof = resolve_profile(profile)
    seed = _check_seed(seed)
    return {
        name: _simulate_cohort(name, cohort_settings(prof, name), seed, prof["fov_mm"])
        for name in prof["cohorts"]
    }


# --------------------------------------------------------------------------------------------
# Images: phantom, lesions, acquisition


@dataclass(frozen=True)
class RenderedPatient:
    """One patient's CT (HU, int16), instance mask and phantom tissue labels; arrays (z, y, x)."""

    patient_id: str
    image: np.ndarray
    mask: np.ndarray
    anatomy: np.ndarray
    spacing: tuple[float, float, float]  # x, y, z (mm), as SimpleITK
    origin: tuple[float, float, float]


class _Grid:
    def __init__(self, acquisition: Mapping[str, Any], fov_mm: Sequence[float]):
        g = _grid_of(acquisition, fov_mm)
        self.nx, self.ny, self.nz = g["shape"]
        self.spacing = np.array(g["spacing_mm"])  # x, y, z
        self.origin = np.array(g["origin"])
        self.shape = (self.nz, self.ny, self.nx)
        self.xs = self.origin[0] + np.arange(self.nx) * self.spacing[0]
        self.ys = self.origin[1] + np.arange(self.ny) * self.spacing[1]
        self.zs = self.origin[2] + np.arange(self.nz) * self.spacing[2]
        self.lo = np.array([self.xs[0], self.ys[0], self.zs[0]])
        self.hi = np.array([self.xs[-1], self.ys[-1], self.zs[-1]])

    def index(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest voxel (k, j, i) of points (..., 3) in mm (x, y, z), clipped to the grid."""
        ijk = np.rint((points - self.origin) / self.spacing).astype(int)
        i = np.clip(ijk[..., 0], 0, self.nx - 1)
        j = np.clip(ijk[..., 1], 0, self.ny - 1)
        k = np.clip(ijk[..., 2], 0, self.nz - 1)
        return k, j, i

    def position(self, flat: np.ndarray) -> np.ndarray:
        k, j, i = np.unravel_index(flat, self.shape)
        return np.stack([self.xs[i], self.ys[j], self.zs[k]], axis=-1)


def _phantom(rng: np.random.Generator, grid: _Grid) -> tuple[np.ndarray, np.ndarray, dict]:
    """Tissue labels and noiseless HU of a thorax + upper abdomen; geometry for the placement."""
    xx, yy = grid.xs[None, :], grid.ys[:, None]  # (1, nx), (ny, 1)
    zz = grid.zs[:, None, None]
    s = rng.uniform(0.93, 1.03)
    A, B = 128.0 * s, 90.0 * s
    fat, wall = rng.uniform(7.0, 16.0), rng.uniform(8.0, 12.0)
    Ac, Bc = A - fat - wall, B - fat - wall
    dome_r, dome_l = rng.uniform(62.0, 72.0), rng.uniform(54.0, 62.0)
    yv, rv = 0.45 * Bc, 15.0 * s
    r_ao = 11.0 * s
    ao = (rv + r_ao + 4.0, yv - 10.0)
    med_w = 14.0 * s
    z_carina = grid.zs[-1] - rng.uniform(30.0, 40.0)
    heart = (0.12 * Ac, -0.3 * Bc, dome_l + 22.0, 0.40 * Ac, 0.45 * Bc, 36.0)
    rib_period, rib_phase = rng.uniform(20.0, 25.0), rng.uniform()
    disc_period, disc_phase = rng.uniform(25.0, 29.0), rng.uniform(0.0, 30.0)

    def ellipse(cx, cy, ax, ay):
        return ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1.0

    def dome(x, y):
        right = dome_r - 40.0 * (((x + 0.45 * Ac) / (0.6 * Ac)) ** 2 + ((y + 0.1 * Bc) / Bc) ** 2)
        left = dome_l - 40.0 * (((x - 0.45 * Ac) / (0.6 * Ac)) ** 2 + ((y + 0.1 * Bc) / Bc) ** 2)
        return np.where(x < 0, right, left)

    body, inner, cavity = (
        ellipse(0, 0, A, B),
        ellipse(0, 0, A - fat, B - fat),
        ellipse(0, 0, Ac, Bc),
    )
    zd = dome(xx, yy)  # (ny, nx): diaphragm height
    above = zz > zd[None]
    lab = np.zeros(grid.shape, np.uint8)
    lab[:, body] = FAT
    lab[:, inner] = SOFT

    vertebra = ellipse(0, yv, rv, rv)
    mediastinum = (
        ((np.abs(xx) < med_w) & (yy < yv))
        | ellipse(0, yv, rv + 6.0, rv + 6.0)
        | ((np.abs(xx) < rv + 4.0) & (yy > yv))
        | ellipse(*ao, r_ao + 3.0, r_ao + 3.0)
    )
    hx, hy, hz, hax, hay, haz = heart
    heart3 = (
        (((xx - hx) / hax) ** 2 + ((yy - hy) / hay) ** 2)[None] + ((zz - hz) / haz) ** 2 <= 1.0
    ) & (above & cavity[None])
    thorax = above & cavity[None]
    lab[thorax & mediastinum[None]] = FAT
    lab[thorax & ~mediastinum[None] & ~heart3] = LUNG
    lab[heart3] = HEART

    # Abdomen below the domes: liver (right, anterior), retroperitoneal fat, adrenals.
    below = zz < zd[None] - 4.0
    liver2 = (
        cavity
        & (xx < 12.0 - 0.35 * yy)
        & ~ellipse(0, yv, rv + 14.0, rv + 14.0)
        & ~ellipse(*ao, r_ao + 6.0, r_ao + 6.0)
    )
    adrenals = []
    for side in (-1.0, 1.0):
        ax_, ay_ = side * 0.3 * Ac, yv - 2.0
        az_ = float(dome(np.array(ax_), np.array(ay_))) - 20.0
        adrenals.append((ax_, ay_, az_))
        liver2 &= ~ellipse(ax_, ay_, 22.0, 18.0)
    lab[below & liver2[None]] = LIVER
    for ax_, ay_, az_ in adrenals:
        around = ((xx - ax_) / 20.0) ** 2 + ((yy - ay_) / 16.0) ** 2
        gland = ((xx - ax_) / 5.0) ** 2 + ((yy - ay_) / 10.0) ** 2
        zterm = ((zz - az_) / 26.0) ** 2
        lab[below & cavity[None] & (around[None] + zterm <= 1.0)] = FAT
        lab[below & (gland[None] + ((zz - az_) / 12.0) ** 2 <= 1.0)] = ADRENAL

    lab[:, ellipse(*ao, r_ao, r_ao) & cavity] = AORTA
    trachea = ellipse(0, yv - rv - 12.0, 8.0, 7.0)
    lab[(zz > z_carina) & trachea[None]] = AIRWAY

    # Spine: cortex, marrow, discs, canal, posterior elements.
    marrow = ellipse(0, yv, rv - 2.5, rv - 2.5)
    canal_c = (0.0, yv + rv + 6.0)
    posterior = (ellipse(*canal_c, 10.0, 10.0) | ellipse(0, yv + rv + 16.0, 4.0, 8.0)) & ~vertebra
    lab[:, vertebra] = CORTEX
    lab[:, marrow] = MARROW
    disc = (np.mod(grid.zs + disc_phase, disc_period) < 5.0)[:, None, None]
    lab[disc & vertebra[None]] = DISC
    lab[:, posterior] = CORTEX
    lab[:, ellipse(*canal_c, 6.0, 6.0)] = CANAL

    # Ribs in the chest wall (slanted), sternum anteriorly.
    rho_out = np.sqrt((xx / (A - fat - 1.0)) ** 2 + (yy / (B - fat - 1.0)) ** 2)
    rho_in = np.sqrt((xx / (A - fat - 7.0)) ** 2 + (yy / (B - fat - 7.0)) ** 2)
    theta = np.arctan2(yy, xx)
    band = (rho_out <= 1.0) & (rho_in > 1.0) & (np.abs(xx) > 20.0) & (yy > -0.75 * B)
    slant = 12.0 * np.sin(theta)
    ribs = band[None] & (np.mod((zz + slant[None]) / rib_period + rib_phase, 1.0) < 0.28)
    lab[ribs] = CORTEX
    lab[(zz > 45.0) & ellipse(0, -(B - fat - 6.0), 14.0, 5.0)[None]] = CORTEX

    # Faint lung vessels: random walks from the hila.
    n_vessels = int(rng.integers(26, 40))
    steps = 45
    side = np.where(np.arange(n_vessels) % 2 == 0, -1.0, 1.0)
    start = np.stack(
        [
            side * (med_w + 6.0),
            rng.uniform(-0.3 * Bc, 0.2 * Bc, n_vessels),
            rng.uniform(50.0, grid.zs[-1] - 10.0, n_vessels),
        ],
        axis=1,
    )
    heading = np.stack(
        [side * rng.uniform(0.4, 1.0, n_vessels), rng.normal(0, 0.6, n_vessels)], axis=1
    )
    heading = np.column_stack([heading, rng.normal(0, 0.5, n_vessels)])
    walk = heading[:, None, :] + np.cumsum(rng.normal(0, 0.12, (n_vessels, steps, 3)), axis=1)
    walk /= np.linalg.norm(walk, axis=2, keepdims=True)
    points = start[:, None, :] + 2.0 * np.cumsum(walk, axis=1)
    thick = np.zeros(points.shape[:2], bool)
    thick[:, : int(0.45 * steps)] = True
    inside = np.all((points >= grid.lo) & (points <= grid.hi), axis=2)
    k, j, i = grid.index(points[inside])
    kk, jj, ii = [k], [j], [i]
    tk, tj, ti = grid.index(points[inside & thick])
    for dj, di in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        kk.append(tk)
        jj.append(np.clip(tj + dj, 0, grid.ny - 1))
        ii.append(np.clip(ti + di, 0, grid.nx - 1))
    k, j, i = np.concatenate(kk), np.concatenate(jj), np.concatenate(ii)
    lung_hit = lab[k, j, i] == LUNG
    lab[k[lung_hit], j[lung_hit], i[lung_hit]] = VESSEL

    lut = np.zeros(32, np.float32)
    lut[AIR], lut[AIRWAY] = -1000.0, -1000.0
    lut[FAT] = rng.uniform(-110.0, -85.0)
    lut[SOFT] = rng.uniform(38.0, 52.0)
    lut[LUNG] = rng.uniform(-875.0, -835.0)
    lut[VESSEL] = 40.0
    lut[HEART] = rng.uniform(35.0, 45.0)
    lut[AORTA] = rng.uniform(38.0, 48.0)
    lut[CORTEX] = rng.uniform(700.0, 950.0)
    lut[MARROW] = rng.uniform(340.0, 420.0)
    lut[DISC] = 80.0
    lut[CANAL] = 12.0
    lut[LIVER] = rng.uniform(52.0, 66.0)
    lut[ADRENAL] = 30.0
    hu = lut[lab]
    gravity = rng.uniform(30.0, 70.0)  # dependent (posterior) lung is denser
    hu += np.where(lab == LUNG, (gravity * yy / Bc).astype(np.float32)[None], np.float32(0.0))

    geometry = {
        "Ac": Ac,
        "Bc": Bc,
        "yv": yv,
        "rv": rv,
        "med_w": med_w,
        "heart_top": hz + haz,
        "adrenals": adrenals,
    }
    return lab, hu, geometry


# Directions used to test where a lesion would lie (26 neighbours of a cube, normalised).
_DIRS = np.array(
    [
        (x, y, z)
        for x in (-1, 0, 1)
        for y in (-1, 0, 1)
        for z in (-1, 0, 1)
        if (x, y, z) != (0, 0, 0)
    ],
    float,
)
_DIRS /= np.linalg.norm(_DIRS, axis=1, keepdims=True)


def _fibonacci_sphere(n: int) -> np.ndarray:
    k = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * k / n)
    theta = np.pi * (1 + 5**0.5) * k
    return np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], 1)


_SPHERE = _fibonacci_sphere(1500)


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class _Shape:
    """The surface of one lesion: radius as a function of direction (lobulated, spiculated)."""

    def __init__(self, rng: np.random.Generator, lesion: Mapping[str, Any]):
        self.r0 = float(lesion["diameter_mm"]) / 2.0
        self.lobulation = float(lesion["lobulation"])
        self.lob_dirs = _unit(rng, 4)
        self.lob_freq = rng.integers(2, 6, 4).astype(float)
        self.lob_phase = rng.uniform(0, 2 * np.pi, 4)
        n = int(lesion["n_spicules"])
        self.spike_dirs = _unit(rng, n)
        self.spike_power = rng.uniform(15.0, 45.0, n)
        self.spike_rel = float(lesion["spicule_mm"]) * rng.uniform(0.6, 1.2, n) / self.r0
        self.clip = min(1.45 * self.r0, self.r0 + 10.0, 34.0)
        self.rmax = float(self.radius(np.vstack([_SPHERE, self.spike_dirs])).max())

    def radius(self, u: np.ndarray) -> np.ndarray:
        """Radius (mm) along unit directions u (..., 3)."""
        lob = np.zeros(u.shape[:-1])
        for w, f, p in zip(self.lob_dirs, self.lob_freq, self.lob_phase, strict=True):
            lob += np.cos(f * np.arccos(np.clip(u @ w, -1.0, 1.0)) + p)
        r = np.maximum(1.0 + self.lobulation * lob / math.sqrt(len(self.lob_freq)), 0.7)
        for v, power, rel in zip(self.spike_dirs, self.spike_power, self.spike_rel, strict=True):
            r += rel * np.maximum(u @ v, 0.0) ** power
        return np.minimum(self.r0 * r, self.clip)


# Where each site's lesion may lie: the tissue allowed around it, and the fraction required.
_ALLOWED = {
    "lung": ({LUNG, VESSEL}, 0.8),
    "lymph_node": ({FAT, SOFT, LUNG, VESSEL, HEART}, 0.85),
    "liver": ({LIVER}, 0.9),
    "adrenal": ({FAT, SOFT, LIVER, ADRENAL, LUNG, VESSEL}, 0.9),
    "bone": ({FAT, SOFT, LUNG, VESSEL, CORTEX, MARROW, DISC, CANAL, HEART, AORTA}, 0.95),
    "pleura": ({LUNG, VESSEL, SOFT, FAT, CORTEX}, 0.95),
}
_PLEURA_FLATTEN = 0.7


class _Placer:
    """Proposes lesion centres inside the structure of each site; keeps lesions apart."""

    def __init__(self, rng: np.random.Generator, grid: _Grid, lab: np.ndarray, geometry: dict):
        self.rng, self.grid, self.lab, self.geo = rng, grid, lab, geometry
        self.pools: dict[str, np.ndarray] = {}
        self.placed: list[tuple[np.ndarray, float]] = []  # (centre, reach incl. halo)

    def _pool(self, name: str) -> np.ndarray:
        """Flat voxel indices where a lesion of a site may be centred (computed once, lazily)."""
        if name in self.pools:
            return self.pools[name]
        lab, grid, g = self.lab, self.grid, self.geo
        x = np.abs(grid.xs)[None, None, :]
        y = grid.ys[None, :, None]
        z = grid.zs[:, None, None]
        lungish = (lab == LUNG) | (lab == VESSEL)
        fatty = (lab == FAT) | (lab == SOFT)
        if name in ("lung", "liver", "marrow", "rib"):
            label = {"lung": LUNG, "liver": LIVER, "marrow": MARROW, "rib": CORTEX}[name]
            where = lab == label
        elif name == "lymph_node":
            # Mediastinal fat above the heart, and the lung next to the mediastinum (hilum).
            station = (y > -0.7 * g["Bc"]) & (y < g["yv"] - g["rv"] + 4.0)
            station = station & (z > g["heart_top"] - 25.0)
            where = station & (
                (fatty & (x < g["med_w"] + 30.0)) | (lungish & (x < g["med_w"] + 10.0))
            )
        elif name == "lymph_node_wide":  # anywhere in the thorax near the midline
            where = (fatty | lungish | (lab == HEART)) & (x < g["med_w"] + 40.0)
        elif name == "pleura":  # lung next to the cavity wall
            rho = np.sqrt((grid.xs[None, :] / g["Ac"]) ** 2 + (grid.ys[:, None] / g["Bc"]) ** 2)
            where = (lab == LUNG) & (rho > 1.0 - 6.0 / g["Bc"])[None]
        elif name == "body":  # last resort: any soft tissue, fat, lung or liver
            where = fatty | lungish | (lab == LIVER)
        else:
            raise KeyError(name)
        pool = np.flatnonzero(where)
        if len(pool) == 0:
            pool = np.flatnonzero(lab != AIR)
        self.pools[name] = pool
        return pool

    def _propose(self, site: str, rmax: float, wide: bool) -> tuple[np.ndarray, np.ndarray | None]:
        rng, g = self.rng, self.geo
        if wide:
            pool = self._pool("lymph_node_wide" if site == "lymph_node" else "body")
        elif site == "adrenal":
            centre = np.array(g["adrenals"][int(rng.integers(2))]) + rng.normal(0, 3.0, 3)
            centre[2] = max(centre[2], self.grid.lo[2] + rmax + 2.0) + rng.uniform(0, 4.0)
            return centre, None
        elif site == "bone":
            pool = self._pool("marrow" if rng.random() < 0.7 else "rib")
        else:
            pool = self._pool(site)
        centre = self.grid.position(pool[rng.integers(len(pool))])
        centre = centre + rng.uniform(-0.5, 0.5, 3) * self.grid.spacing
        if site != "pleura" or wide:
            return centre, None
        normal = np.array([centre[0] / g["Ac"] ** 2, centre[1] / g["Bc"] ** 2, 0.0])
        normal /= np.linalg.norm(normal)
        return centre, normal

    def place(self, site: str, shape: _Shape, halo: float) -> tuple[np.ndarray, np.ndarray | None]:
        """A centre (and lens normal for pleura) for a lesion; tries the site's structure first,
        relaxes how much of the lesion must lie in allowed tissue, then widens the search."""
        allowed, need = _ALLOWED[site]
        allowed = np.array(sorted(allowed))
        reach = shape.rmax + halo
        margin = shape.rmax + 0.6 * self.grid.spacing
        probe_r = shape.r0 * (1.0 + 0.5 * shape.lobulation)
        best, best_score = None, -1.0
        for attempt in range(3000):
            wide = attempt >= 1200
            centre, normal = self._propose(site, shape.rmax, wide)
            if normal is not None:  # the lens sits on the pleura, partly in the chest wall
                centre = centre + 0.3 * _PLEURA_FLATTEN * shape.r0 * normal
            if np.any(centre - margin < self.grid.lo) or np.any(centre + margin > self.grid.hi):
                continue
            if any(np.linalg.norm(centre - c) < reach + r + 2.0 for c, r in self.placed):
                continue
            probes = centre + probe_r * (_DIRS if normal is None else _flatten_dirs(_DIRS, normal))
            score = float(np.isin(self.lab[self.grid.index(probes)], allowed).mean())
            if score > best_score:
                best, best_score = (centre, normal), score
            if score >= need - 0.1 * min(attempt // 300, 3) or (wide and attempt >= 1500):
                break
        if best is None:
            raise RuntimeError(f"could not place a {site} lesion of {2 * shape.r0:.0f} mm")
        self.placed.append((best[0], reach))
        return best


def _flatten_dirs(dirs: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Directions scaled onto the surface of a lens flattened along ``normal``."""
    along = dirs @ normal
    return dirs - (1.0 - _PLEURA_FLATTEN) * along[:, None] * normal[None, :]


def _smooth_field(rng: np.random.Generator, shape, sigma_vox) -> np.ndarray:
    field = ndimage.gaussian_filter(
        rng.standard_normal(shape, dtype=np.float32), sigma_vox, mode="nearest", truncate=3.0
    )
    return field / max(float(field.std()), 1e-6)


def _draw_lesion(
    rng: np.random.Generator,
    grid: _Grid,
    hu: np.ndarray,
    lab: np.ndarray,
    mask: np.ndarray,
    lesion: Mapping[str, Any],
    shape: _Shape,
    centre: np.ndarray,
    normal: np.ndarray | None,
) -> None:
    halo = float(lesion["halo_mm"])
    ext = shape.rmax + halo + grid.spacing
    lo = np.maximum(np.floor((centre - ext - grid.origin) / grid.spacing).astype(int), 0)
    hi = np.minimum(
        np.ceil((centre + ext - grid.origin) / grid.spacing).astype(int) + 1,
        [grid.nx, grid.ny, grid.nz],
    )
    box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    dx = (grid.xs[lo[0] : hi[0]] - centre[0])[None, None, :]
    dy = (grid.ys[lo[1] : hi[1]] - centre[1])[None, :, None]
    dz = (grid.zs[lo[2] : hi[2]] - centre[2])[:, None, None]
    d = np.stack(np.broadcast_arrays(dx, dy, dz), axis=-1)
    if normal is not None:  # lens: distances along the normal count 1/f times
        along = d @ normal
        d = d + (1.0 / _PLEURA_FLATTEN - 1.0) * along[..., None] * normal
    r = np.linalg.norm(d, axis=-1)
    u = d / np.maximum(r, 1e-6)[..., None]
    radius = shape.radius(u)
    inside = r <= radius
    if not inside.any():  # never for measurable lesions; keep the centre voxel at least
        inside[tuple(np.array(inside.shape) // 2)] = True

    sub_hu, sub_lab, sub_mask = hu[box], lab[box], mask[box]
    field = _smooth_field(rng, inside.shape, 1.5 / grid.spacing[::-1])
    if halo > 0:
        shell = (r > radius) & (r <= radius + halo) & (sub_lab != LESION) & (sub_lab != HALO)
        w = np.clip(1.0 - (r - radius) / halo, 0.0, 1.0) ** 0.8
        lungish = shell & np.isin(sub_lab, [LUNG, VESSEL])
        ggo = rng.uniform(-560.0, -380.0) + 40.0 * field
        sub_hu[lungish] += (w * (ggo - sub_hu))[lungish]
        softish = shell & np.isin(sub_lab, [FAT, SOFT, LIVER, ADRENAL, HEART])
        sub_hu[softish] += (0.45 * w * (float(lesion["tumour_hu"]) - sub_hu))[softish]
        sub_lab[lungish | softish] = HALO
    values = float(lesion["tumour_hu"]) + float(lesion["texture_hu"]) * field
    necrotic = r < float(lesion["necrosis"]) * radius * (1.0 + 0.15 * field)
    values = np.where(necrotic, rng.uniform(5.0, 18.0) + 3.0 * field, values)
    sub_hu[inside] = values[inside]
    sub_lab[inside] = LESION
    sub_mask[inside] = int(lesion["mask_label"])


def _acquire(rng: np.random.Generator, hu: np.ndarray, grid: _Grid, acq: Mapping) -> np.ndarray:
    """Scanner: PSF blur (plus the slice profile in z), kernel-grained noise, offset, int16."""
    sx, sy, sz = grid.spacing
    blur = float(acq["blur_mm"])
    sigma_z = math.sqrt(blur**2 + (sz / 2.355) ** 2)
    image = ndimage.gaussian_filter(
        hu, (sigma_z / sz, blur / sy, blur / sx), mode="nearest", truncate=3.0
    )
    noise = rng.standard_normal(hu.shape, dtype=np.float32)
    corr = float(acq.get("noise_corr_mm", 0.0))
    if corr > 0:
        noise = ndimage.gaussian_filter(noise, (0.0, corr / sy, corr / sx), truncate=3.0)
        noise /= max(float(noise.std()), 1e-6)
    image += np.float32(acq["noise_hu"]) * noise + np.float32(acq["hu_offset"])
    return np.clip(np.rint(image), *_HU_RANGE).astype(np.int16)


def _render(spec: Mapping[str, Any]) -> RenderedPatient:
    code = _code(spec["cohort"])
    rng = _rng(spec["seed"], code, _STREAM_RENDER, spec["index"])
    grid = _Grid(spec["acquisition"], spec["fov_mm"])
    lab, hu, geometry = _phantom(rng, grid)
    mask = np.zeros(grid.shape, np.uint8 if len(spec["lesions"]) < 256 else np.uint16)
    placer = _Placer(rng, grid, lab, geometry)
    shapes = [_Shape(rng, lesion) for lesion in spec["lesions"]]
    order = sorted(range(len(shapes)), key=lambda n: -shapes[n].rmax)  # largest first
    for n in order:
        lesion, shape = spec["lesions"][n], shapes[n]
        centre, normal = placer.place(lesion["site"], shape, float(lesion["halo_mm"]))
        _draw_lesion(rng, grid, hu, lab, mask, lesion, shape, centre, normal)
    image = _acquire(rng, hu, grid, spec["acquisition"])
    return RenderedPatient(
        patient_id=spec["patient_id"],
        image=image,
        mask=mask,
        anatomy=lab,
        spacing=tuple(float(s) for s in grid.spacing),
        origin=tuple(float(o) for o in grid.origin),
    )


def render_patient(tables: SimulatedTables, patient: int | str) -> RenderedPatient:
    """The CT, mask and tissue labels of one patient (by index or id), as ``simulate`` writes it."""
    if isinstance(patient, str):
        matches = np.flatnonzero(tables.patients["patient_id"].to_numpy() == patient)
        if len(matches) != 1:
            raise KeyError(f"no patient {patient!r} in {tables.cohort}")
        patient = int(matches[0])
    return _render(tables.render_spec(patient))


def _write_nifti(array: np.ndarray, spacing, origin, path: Path) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetOrigin(tuple(float(o) for o in origin))
    sitk.WriteImage(image, str(path), useCompression=True)


def _render_job(job: tuple[str, dict[str, Any]]) -> str:
    """Worker entry: render one patient and write its image and mask under the cohort folder."""
    folder, spec = Path(job[0]), job[1]
    patient = _render(spec)
    _write_nifti(
        patient.image,
        patient.spacing,
        patient.origin,
        folder / "images" / f"{spec['patient_id']}.nii.gz",
    )
    _write_nifti(
        patient.mask,
        patient.spacing,
        patient.origin,
        folder / "masks" / f"{spec['patient_id']}.nii.gz",
    )
    return spec["patient_id"]


def _worker_init() -> None:
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)


def _write_tables(folder: Path, tables: SimulatedTables) -> None:
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    (folder / "truth").mkdir()
    tables.patients.to_csv(folder / "patients.csv", index=False)
    tables.lesions.to_csv(folder / "lesions.csv", index=False)
    tables.truth_lesions.to_csv(folder / "truth" / "lesions.csv", index=False, float_format="%.6f")
    tables.truth_patients.to_csv(
        folder / "truth" / "patients.csv", index=False, float_format="%.6f"
    )


def simulate(
    profile: Mapping[str, Any] | str,
    seed: int,
    out: Path,
    *,
    workers: int = 1,
    progress: bool = True,
) -> Path:
    """Write the simulated cohorts in the cohort layout under ``out`` (which must not hold files).

    The dataset is built in ``<out>.tmp-<host>-<pid>-<random>`` and moved to ``out`` at the
    end, so an interrupted run leaves no half dataset. The output depends on (profile, seed,
    ``GENERATOR_VERSION``) only; ``workers > 1`` renders patients in worker processes.
    """
    prof = resolve_profile(profile)
    seed = _check_seed(seed)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not empty; refusing to overwrite it")
    tables = simulate_tables(prof, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Host, pid and a random part: unique even across nodes of a cluster sharing the cache.
    tmp = out.with_name(
        f"{out.name}.tmp-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    )
    jobs = []
    try:
        tmp.mkdir()
        for name, cohort in tables.items():
            _write_tables(tmp / name, cohort)
            jobs += [(str(tmp / name), cohort.render_spec(i)) for i in range(len(cohort.patients))]
        with tqdm(total=len(jobs), desc="simulate", unit="patient", disable=not progress) as bar:
            if workers <= 1:
                for job in jobs:
                    _render_job(job)
                    bar.update()
            else:
                context = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(
                    max_workers=int(workers), mp_context=context, initializer=_worker_init
                ) as pool:
                    futures = [pool.submit(_render_job, job) for job in jobs]
                    try:
                        for future in as_completed(futures):
                            future.result()
                            bar.update()
                    except BaseException:
                        for future in futures:
                            future.cancel()
                        raise
        meta = {
            "generator": GENERATOR_NAME,
            "generator_version": GENERATOR_VERSION,
            "profile": prof.get("name", "custom"),
            "seed": seed,
            "cohorts": list(tables),
            "acquisition": {
                name: {k: t.acquisition[k] for k in sorted(t.acquisition)}
                for name, t in tables.items()
            },
            "profile_config": prof,
        }
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
