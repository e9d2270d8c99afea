"""Clinical covariates and lesion-to-patient aggregation for the survival models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.features.aggregate import aggregate_lesions
from benchmark.features.clinical import ClinicalEncoder

PATIENTS = pd.DataFrame(
    {
        "arm": ["io", "io+sabr", "io", "io+sabr"],
        "pdl1_tps": [0.0, 20.0, np.nan, 80.0],
        "age": [60.0, 70.0, 65.0, np.nan],
        "sex": ["M", "F", "F", "M"],
        "ecog": [0, 1, 0, 1],
    },
    index=pd.Index(["P1", "P2", "P3", "P4"], name="patient_id"),
)


def test_pdl1_category_with_explicit_missing_indicator():
    x = ClinicalEncoder(["pdl1", "arm"], "category").fit(PATIENTS).transform(PATIENTS)
    assert list(x.columns) == [
        "pdl1_1_49",
        "pdl1_ge_50",
        "arm_io_sabr",
        "pdl1_1_49_missing",
        "pdl1_ge_50_missing",
    ]
    assert x.loc["P2", "pdl1_1_49"] == 1 and x.loc["P2", "pdl1_ge_50"] == 0
    assert x.loc["P4", "pdl1_ge_50"] == 1
    assert x.loc["P3", "pdl1_1_49_missing"] == 1 and x.loc["P1", "pdl1_1_49_missing"] == 0
    assert list(x["arm_io_sabr"]) == [0, 1, 0, 1]
    assert not x.isna().any().any()


def test_pdl1_tps_imputed_with_the_training_median():
    encoder = ClinicalEncoder(["pdl1", "age"], "tps").fit(PATIENTS)
    x = encoder.transform(PATIENTS)
    assert x.loc["P3", "pdl1_tps"] == pytest.approx(0.20)  # median of 0, 20, 80 %
    assert x.loc["P4", "age"] == 65.0 and x.loc["P4", "age_missing"] == 1
    # A new cohort is encoded with the training statistics, not its own.
    other = PATIENTS.assign(pdl1_tps=[np.nan, np.nan, 90.0, 90.0])
    assert encoder.transform(other).loc["P1", "pdl1_tps"] == pytest.approx(0.20)


def test_absent_or_unknown_covariates_are_clear_errors():
    with pytest.raises(ValueError, match=r"need column\(s\) \['ecog'\]"):
        ClinicalEncoder(["ecog"]).fit(PATIENTS.drop(columns="ecog"))
    with pytest.raises(ValueError, match=r"unknown clinical covariate\(s\) \['bmi'\]"):
        ClinicalEncoder(["pdl1", "bmi"])


def test_aggregation_rules_by_hand():
    features = pd.DataFrame(
        {"original_shape_MeshVolume": [100.0, 300.0, 50.0], "texture": [1.0, 3.0, 7.0]},
        index=["L1", "L2", "L3"],
    )
    lesion_patient = pd.Series(["A", "A", "B"], index=features.index)
    patients = ["A", "B", "C"]
    largest = aggregate_lesions(features, lesion_patient, patients, rule="largest")
    weighted = aggregate_lesions(features, lesion_patient, patients, rule="volume_weighted")
    mean = aggregate_lesions(features, lesion_patient, patients, rule="mean")
    assert largest.loc["A", "largest_texture"] == 3.0
    assert weighted.loc["A", "volume_weighted_texture"] == pytest.approx((100 + 900) / 400)
    assert mean.loc["A", "mean_texture"] == 2.0
    assert largest.loc["A", "total_volume_log"] == pytest.approx(np.log1p(400.0))
    assert list(largest["n_lesions"]) == [2, 1, 0]
    assert np.isnan(largest.loc["C", "largest_texture"])  # no lesion: the model's imputer decides
    with pytest.raises(ValueError, match="aggregation rule"):
        aggregate_lesions(features, lesion_patient, patients, rule="max")
