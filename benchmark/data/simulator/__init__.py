"""The built-in trial simulator: three synthetic cohorts shaped like PEMBRO-RT, NIVORAD and MDACC.

It writes the cohort layout of docs/data.md (tables, CT images, instance masks) plus the truth
no submission sees (each lesion's true p(PD), each patient's true linear predictors)::

    <out>/<cohort>/patients.csv, lesions.csv, images/<pid>.nii.gz, masks/<pid>.nii.gz
    <out>/<cohort>/truth/lesions.csv      lesion_id, p_pd
    <out>/<cohort>/truth/patients.csv     patient_id, lp_os, lp_pfs
    <out>/dataset.json

The generative model, in order (docs/simulator.md says why each part is there):

* **Patients**: arm (exact counts per profile, randomised order), age, sex, ECOG, PD-L1 TPS (a
  few percent written blank; the true value still acts), patient random effects ``u`` (lesion
  aggressiveness) and ``v`` (peritumoral margin).
* **Lesions** (1-6 per patient) at ``SITES`` with per-site caps; each has a latent aggressiveness
  ``a = u + noise``, a peritumoral factor ``m = v + noise`` and an invisible factor ``h``. ``a``
  shows *inside* the mask (size, lobulation, spiculation, internal texture, necrotic core: each a
  separate noisy readout); ``m`` shows only *outside* it, as how far the ground-glass halo /
  infiltrative margin reaches; the margin's density next to the surface is a nuisance unrelated
  to ``m``, so what partial volume blurs into the mask carries no signal.
* **Per-lesion PD** (RECIST-like): a latent log-growth ``g`` over the first follow-up interval
  (8-12 weeks) with logistic noise; PD iff the diameter grows >= 20 % and >= 5 mm, so
  ``p_pd = expit((eta - threshold / interval) / scale)`` with ``eta`` linear in ``a``, ``m``,
  ``h``, PD-L1 (protective), arm (small abscopal effect). The irradiated lesion (exactly one per
  io+sabr patient) fails locally with probability ~``pd.irradiated.failure``. Each cohort has its
  own weights, growth noise and local failure (its drug and radiotherapy), so the truth itself
  transfers imperfectly from PEMBRO-RT to NIVORAD and MDACC.
* **OS / PFS**: Weibull proportional hazards with a linear predictor of PD-L1, tumour burden
  (log total volume), mean aggressiveness and margin, ECOG, age; independent uniforms per patient
  and a Gaussian copula between progression and death. A progression is seen at the CT that
  shows it (the first follow-up CT, then every ``pd.assessment_weeks``), so PFS = min(that CT,
  death) <= OS, and PFS curves drop at the first CT as trials' do.
  Censoring is administrative (uniform accrual + minimum follow-up) plus a small random loss.
* **Calibration**: the growth intercept (to the PD rate) and each arm's Weibull scales (to the
  arm's median OS and PFS) are set once per cohort on a large reference draw with a fixed seed,
  so a dataset's patients are independent and its rates and medians vary from seed to seed as a
  real trial's would. The true linear predictors written to truth/ include the arm effect
  implied by the calibrated scales (higher = worse).
* **Images**: a per-patient thoracic / upper-abdominal phantom (body, subcutaneous fat, chest
  wall, ribs, sternum, lungs with faint vessels and a gravity gradient, mediastinal fat, trachea,
  heart, aorta, vertebra with discs and canal, diaphragm domes, liver, retroperitoneal fat,
  adrenals); each lesion is placed inside the structure of its site, without overlap, then the
  cohort's acquisition is applied: Gaussian PSF blur plus the slice profile, (kernel-grained)
  noise, HU offset, int16. The mask holds each lesion's own voxels (before blur), labelled with
  its ``mask_label``.

Every random stream derives from ``numpy.random.SeedSequence`` of (seed, cohort, [patient]), so
the output depends on (profile, seed, ``GENERATOR_VERSION``) only, whatever ``workers`` is.

One concept per module: :mod:`.profiles` (conf/data profiles), :mod:`.streams` (seeds and the
generator version), :mod:`.latent` (covariates and lesion biology), :mod:`.outcomes` (PD and event
times, calibrated), :mod:`.tables` (one cohort's tables), :mod:`.grid`, :mod:`.phantom`,
:mod:`.lesions` (shape and drawing), :mod:`.placement`, :mod:`.lung` and :mod:`.scanner` (the
realism a profile may switch on: vessel trees and textured parenchyma, kernel-shaped noise;
docs/realism.md), :mod:`.render` (one patient's CT and mask), :mod:`.write` (the dataset
folder). Each module's public names are what the others use; its ``_names`` stay inside it.
"""

from benchmark.data.simulator.phantom import ANATOMY_LABELS
from benchmark.data.simulator.profiles import (
    SITES,
    available_profiles,
    load_profile,
    resolve_profile,
)
from benchmark.data.simulator.render import RenderedPatient, render_patient
from benchmark.data.simulator.streams import GENERATOR_NAME, GENERATOR_VERSION
from benchmark.data.simulator.tables import SimulatedTables, simulate_tables
from benchmark.data.simulator.write import simulate

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
