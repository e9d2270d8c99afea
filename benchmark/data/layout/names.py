"""The names the on-disk layout fixes: files, folders and each table's required columns.

In one place so that reading, checking, scanning and view-building agree on one spelling.
"""

from __future__ import annotations

from benchmark.api.cohort import (
    LESION_COLUMNS,
    LESION_OUTCOME_COLUMNS,
    PATIENT_COLUMNS,
    PATIENT_OUTCOME_COLUMNS,
)

PATIENTS_CSV = "patients.csv"
LESIONS_CSV = "lesions.csv"
IMAGES = "images"
MASKS = "masks"
TRUTH = "truth"
SUFFIX = ".nii.gz"

PATIENT_REQUIRED = PATIENT_COLUMNS + PATIENT_OUTCOME_COLUMNS
LESION_REQUIRED = LESION_COLUMNS + LESION_OUTCOME_COLUMNS
TRUTH_LESION_COLUMNS = ("lesion_id", "p_pd")
TRUTH_PATIENT_COLUMNS = ("patient_id", "lp_os", "lp_pfs")
