"""Clinical covariates as model inputs (PD-L1, treatment arm, ...), with missing values explicit.

Missing values are imputed (median of the training patients) and flagged with a missing
indicator column (scikit-learn's ``SimpleImputer(add_indicator=True)``), so a model can learn
that "PD-L1 unknown" differs from "PD-L1 at the median". PD-L1 is either the tumour proportion
score (``tps``, 0-1) or the clinical category (``category``: <1%, 1-49%, >=50%, one-hot with <1%
as reference and an explicit "unknown" column).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer

# covariate name -> the patients.csv column it is derived from
COVARIATE_COLUMNS = {"pdl1": "pdl1_tps", "arm": "arm", "age": "age", "sex": "sex", "ecog": "ecog"}
PDL1_CODINGS = ("tps", "category")


def _raw_covariates(patients: pd.DataFrame, covariates: Sequence[str], pdl1_coding: str):
    missing = [COVARIATE_COLUMNS[c] for c in covariates if COVARIATE_COLUMNS[c] not in patients]
    if missing:
        raise ValueError(
            f"clinical covariates {list(covariates)} need column(s) {missing}, which the cohort's "
            f"patients table does not have (columns: {list(patients.columns)})"
        )
    frame = pd.DataFrame(index=patients.index)
    for name in covariates:
        column = patients[COVARIATE_COLUMNS[name]]
        if name == "pdl1":
            tps = pd.to_numeric(column, errors="coerce")
            if pdl1_coding == "tps":
                frame["pdl1_tps"] = tps / 100.0
            else:
                frame["pdl1_1_49"] = np.where(tps.isna(), np.nan, ((tps >= 1) & (tps < 50)) * 1.0)
                frame["pdl1_ge_50"] = np.where(tps.isna(), np.nan, (tps >= 50) * 1.0)
        elif name == "arm":
            frame["arm_io_sabr"] = np.where(column.isna(), np.nan, (column == "io+sabr") * 1.0)
        elif name == "sex":
            frame["sex_male"] = np.where(column.isna(), np.nan, (column == "M") * 1.0)
        else:
            frame[name] = pd.to_numeric(column, errors="coerce")
    return frame


class ClinicalEncoder:
    """Fit on the training patients, then encode any cohort's patients the same way."""

    def __init__(self, covariates: Sequence[str] = ("pdl1", "arm"), pdl1_coding: str = "category"):
        unknown = [c for c in covariates if c not in COVARIATE_COLUMNS]
        if unknown:
            raise ValueError(
                f"unknown clinical covariate(s) {unknown}; known: {sorted(COVARIATE_COLUMNS)}"
            )
        if pdl1_coding not in PDL1_CODINGS:
            raise ValueError(f"pdl1_coding must be one of {PDL1_CODINGS}, got {pdl1_coding!r}")
        self.covariates = list(covariates)
        self.pdl1_coding = pdl1_coding

    def fit(self, patients: pd.DataFrame) -> ClinicalEncoder:
        raw = _raw_covariates(patients, self.covariates, self.pdl1_coding)
        # keep_empty_features: a covariate all-missing in training still yields a (constant) column.
        self.imputer_ = SimpleImputer(
            strategy="median", add_indicator=True, keep_empty_features=True
        ).fit(raw)
        indicators = [f"{raw.columns[i]}_missing" for i in self.imputer_.indicator_.features_]
        self.columns_ = [*raw.columns, *indicators]
        return self

    def transform(self, patients: pd.DataFrame) -> pd.DataFrame:
        raw = _raw_covariates(patients, self.covariates, self.pdl1_coding)
        return pd.DataFrame(
            self.imputer_.transform(raw), index=patients.index, columns=self.columns_
        )
