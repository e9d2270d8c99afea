"""The cohort view a submission works with, and the outcomes the harness keeps apart from it.

A submission's ``predict`` receives a :class:`Cohort` only: covariates, the lesion table and the
image/mask files. Outcomes travel in :class:`Outcomes`, which the harness hands to ``fit`` for the
training patients and to nobody else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

TASKS = ("lesion_pd", "os", "pfs")
SURVIVAL_TASKS = ("os", "pfs")
COHORTS = ("pembro_rt", "nivorad", "mdacc")
ARMS = ("io", "io+sabr")

PATIENT_COLUMNS = ("patient_id", "arm", "pdl1_tps", "age", "sex", "ecog")
PATIENT_OUTCOME_COLUMNS = ("os_months", "os_event", "pfs_months", "pfs_event")
LESION_COLUMNS = ("lesion_id", "patient_id", "mask_label", "site", "irradiated")
LESION_OUTCOME_COLUMNS = ("pd",)


@dataclass(frozen=True)
class Cohort:
    """What a submission may see of one cohort; it holds no outcome, and no path to one.

    ``images``/``masks`` point into a blinded folder that holds image files only, so walking up
    from a path does not reach the tables with the labels. ``content_keys`` identify each
    patient's image+mask content, for caching per-lesion work (radiomics, crops) by content.
    """

    name: str
    patients: pd.DataFrame  # index patient_id: arm, pdl1_tps, age, sex, ecog
    lesions: pd.DataFrame  # index lesion_id: patient_id, mask_label, site, irradiated
    images: Mapping[str, Path]
    masks: Mapping[str, Path]
    content_keys: Mapping[str, str]

    @property
    def patient_ids(self) -> list[str]:
        return list(self.patients.index)

    @property
    def lesion_ids(self) -> list[str]:
        return list(self.lesions.index)

    def subset(self, patient_ids: Iterable[str]) -> Cohort:
        """The same cohort restricted to some patients (and their lesions)."""
        keep = list(patient_ids)
        lesions = self.lesions[self.lesions["patient_id"].isin(keep)]
        return Cohort(
            name=self.name,
            patients=self.patients.loc[keep].copy(),
            lesions=lesions.copy(),
            images={p: self.images[p] for p in keep},
            masks={p: self.masks[p] for p in keep},
            content_keys={p: self.content_keys[p] for p in keep},
        )


@dataclass(frozen=True)
class Outcomes:
    """Labels of one cohort: per-lesion PD and per-patient (time, event) for OS and PFS."""

    lesion_pd: pd.Series  # index lesion_id, values 0/1
    os: pd.DataFrame  # index patient_id: time (months), event (bool)
    pfs: pd.DataFrame

    def subset(self, cohort: Cohort) -> Outcomes:
        """The outcomes of exactly the patients and lesions of ``cohort``."""
        return Outcomes(
            lesion_pd=self.lesion_pd.loc[cohort.lesion_ids].copy(),
            os=self.os.loc[cohort.patient_ids].copy(),
            pfs=self.pfs.loc[cohort.patient_ids].copy(),
        )

    def survival(self, task: str) -> np.ndarray:
        """(event, time) as the structured array scikit-survival expects."""
        frame = self.os if task == "os" else self.pfs
        y = np.empty(len(frame), dtype=[("event", bool), ("time", float)])
        y["event"] = frame["event"].to_numpy(bool)
        y["time"] = frame["time"].to_numpy(float)
        return y


@dataclass(frozen=True)
class Truth:
    """What the simulator knows and no submission sees: the base of the oracle row."""

    lesion_p_pd: pd.Series  # index lesion_id: true probability of progression
    patient_lp: pd.DataFrame  # index patient_id: os, pfs true linear predictors (higher = worse)


@dataclass(frozen=True)
class LabelledCohort:
    """A cohort and its outcomes, as the harness holds them (never handed to ``predict``)."""

    cohort: Cohort
    outcomes: Outcomes
