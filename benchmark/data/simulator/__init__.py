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

One concept per module: :mod:`.profiles` (conf/data profiles), :mod:`.streams` (seeds and the
generator version), :mod:`.latent` (covariates and lesion biology), :mod:`.outcomes` (PD and event
times, calibrated), :mod:`.tables` (one cohort's tables), :mod:`.grid`, :mod:`.phantom`,
:mod:`.lesions` (shape and drawing), :mod:`.placement`, :mod:`.render` (one patient's CT and
mask), :mod:`.write` (the dataset folder).
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
