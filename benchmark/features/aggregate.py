"""From lesion features to one row per patient, for patient-level (survival) models.

A patient has 1-6 lesions; survival models need one row per patient. The rule is config:
- ``largest``: the features of the patient's largest lesion (the usual index-lesion choice);
- ``volume_weighted``: the volume-weighted mean of each feature over the patient's lesions;
- ``mean``: the plain mean.
Tumour burden is added in every case: ``total_volume_log`` (log of the summed lesion volumes,
mm^3) and ``n_lesions``, since burden is prognostic on its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RULES = ("largest", "volume_weighted", "mean")


def aggregate_lesions(
    features: pd.DataFrame,
    lesion_patient: pd.Series,
    patient_ids: list[str],
    *,
    rule: str = "volume_weighted",
    volume_feature: str = "original_shape_MeshVolume",
) -> pd.DataFrame:
    """One row per patient in ``patient_ids`` (index patient_id), from lesion-level ``features``.

    A patient with no lesion gets NaN features, zero burden: the model's imputer decides.
    """
    if rule not in RULES:
        raise ValueError(f"aggregation rule must be one of {RULES}, got {rule!r}")
    if volume_feature not in features:
        raise ValueError(
            f"aggregation needs the lesion volume feature {volume_feature!r}; "
            f"enable the shape feature class of the radiomics extractor"
        )
    frame = features.assign(_patient=lesion_patient.loc[features.index].to_numpy())
    volume = frame[volume_feature].clip(lower=0.0)
    groups = frame.groupby("_patient", sort=False)
    columns = list(features.columns)
    if rule == "largest":
        largest = volume.groupby(frame["_patient"]).idxmax()
        rows = features.loc[largest.to_numpy()].set_axis(largest.index)
    elif rule == "mean":
        rows = groups[columns].mean()
    else:
        weights = volume + 1e-9
        weighted = features[columns].mul(weights, axis=0).groupby(frame["_patient"]).sum()
        rows = weighted.div(weights.groupby(frame["_patient"]).sum(), axis=0)
    rows = rows.add_prefix(f"{rule}_")
    rows["total_volume_log"] = np.log1p(volume.groupby(frame["_patient"]).sum())
    rows["n_lesions"] = groups.size()
    out = rows.reindex(patient_ids)
    out["n_lesions"] = out["n_lesions"].fillna(0)
    out["total_volume_log"] = out["total_volume_log"].fillna(0.0)
    return out
