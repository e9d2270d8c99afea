"""Tumour burden per patient, and patient rows broadcast to their lesions."""

from __future__ import annotations

import pandas as pd

from benchmark.api.cohort import Cohort
from benchmark.features.aggregate import aggregate_lesions

BURDEN_COLUMNS = ("total_volume_log", "n_lesions")


def burden(cohort: Cohort, radiomics: pd.DataFrame) -> pd.DataFrame:
    """One row per patient of ``cohort`` (index patient_id): ``total_volume_log`` (log of the
    summed lesion volumes) and ``n_lesions``, from the lesions' ``radiomics`` (the shape class
    gives the volume). A patient without a lesion has zero burden."""
    rows = aggregate_lesions(
        radiomics, cohort.lesions["patient_id"], cohort.patient_ids, rule="largest"
    )
    return rows[list(BURDEN_COLUMNS)]


def per_lesion(patients: pd.DataFrame, cohort: Cohort, lesion_ids: pd.Index) -> pd.DataFrame:
    """The rows of ``patients`` (index patient_id) repeated for each lesion of ``lesion_ids``,
    indexed by lesion_id: a patient's covariates as columns of a per-lesion design."""
    lesions = cohort.lesions.loc[lesion_ids]
    return patients.loc[lesions["patient_id"]].set_axis(lesions.index)


__all__ = ["BURDEN_COLUMNS", "burden", "per_lesion"]
