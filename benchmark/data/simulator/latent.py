"""The hidden biology of a cohort: covariates, lesion sites and the noisy visible readouts.

Kept apart from the outcomes because the PD calibration redraws it on a large reference cohort.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import special

from benchmark.data.simulator.profiles import SITES


def _probs(values: Sequence[float]) -> np.ndarray:
    p = np.asarray(values, float)
    if (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"bad probabilities {list(values)}")
    return p / p.sum()


def draw_latent(
    rng: np.random.Generator, arms: np.ndarray, cfg: Mapping[str, Any]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Covariates and lesion biology (no outcome yet) for patients with the given arms.

    Drawn alike for a dataset's cohort and for the calibration's reference cohort.
    """
    n = len(arms)
    sabr = arms == "io+sabr"
    cl, pl, les, agg, app, peri = (
        cfg["clinical"],
        cfg["pdl1"],
        cfg["lesions"],
        cfg["aggressiveness"],
        cfg["appearance"],
        cfg["peritumoral"],
    )
    age = np.clip(np.rint(rng.normal(cl["age_mean"], cl["age_sd"], n)), *cl["age_range"])
    male = rng.random(n) < cl["male"]
    ecog = rng.choice(3, size=n, p=_probs(cl["ecog"]))
    category = rng.choice(3, size=n, p=_probs([pl["negative"], pl["low"], pl["high"]]))
    low, high = rng.integers(1, 50, n), rng.integers(50, 101, n)
    tps = np.where(category == 0, 0, np.where(category == 1, low, high)).astype(float)
    missing = rng.random(n) < pl["missing"]
    u = rng.normal(0.0, agg["patient_sd"], n)
    v = rng.normal(0.0, peri["patient_sd"], n)
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
    margin = v[pidx] + rng.normal(0.0, peri["lesion_sd"], m)
    hidden = rng.normal(0.0, 1.0, m)
    z = rng.normal(0.0, app["readout_noise"], (5, m))
    zp = rng.normal(0.0, 1.0, (2, m)) * np.array([[peri["readout_noise"]], [1.0]])

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

    # Inside the mask: the readouts of a (each with its own noise).
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
    # Outside the mask: how far the margin reaches reads the peritumoral factor; its density next
    # to the lesion does not (a nuisance), so what blurs into the mask's edge carries no signal.
    w_lo, w_hi = peri["halo_mm"]
    halo_mm = w_lo + (w_hi - w_lo) * special.expit(peri["slope"] * (margin + zp[0]))
    halo_density = special.expit(zp[1])
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
    mean_margin = np.bincount(pidx, margin, minlength=n) / counts

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
        "mean_peritumoral": mean_margin,
    }
    lesions = {
        "pidx": pidx,
        "slot": slot,
        "site": site,
        "aggressiveness": a,
        "peritumoral": margin,
        "hidden": hidden,
        "diameter_mm": diameter,
        "lobulation": lobulation,
        "n_spicules": n_spicules,
        "spicule_mm": spicule_mm,
        "texture_hu": texture_hu,
        "necrosis": necrosis,
        "halo_mm": halo_mm,
        "halo_density": halo_density,
        "tumour_hu": tumour_hu,
        "irradiated": irradiated,
        "pd_noise": pd_noise,
    }
    return patients, lesions
