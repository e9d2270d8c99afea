"""The numbers behind every curve of the board: ROC, calibration, Kaplan-Meier by risk group.

Both boards draw from here: the README's PNGs (:mod:`.figures`, matplotlib) and the web pages
(:mod:`.web.plots`, plotly), so a curve on the site is the curve in the README. Each function
takes one seed's slice of predictions, or the oracle's (:mod:`.oracle`), (``cohort, task, id,
patient_id, prediction, label, time, event``) and returns plain numbers, no drawing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.api.cohort import SURVIVAL_TASKS

__all__ = ["SURVIVAL_TASKS", "calibration_bins", "km_by_risk", "roc"]

# Predicted-probability bins of the calibration plot: deciles, so each bin holds a tenth of
# the lesions whatever the model's range (equal-width bins leave most of them empty).
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class Roc:
    """One ROC curve (scikit-learn's, corners only) and its AUC."""

    fpr: list[float]
    tpr: list[float]
    thresholds: list[float]  # the first is +inf: no lesion called positive
    auc: float


def roc(frame: pd.DataFrame) -> Roc | None:
    """ROC of a ``lesion_pd`` slice; None when the labels hold one class (no curve exists)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    label, score = frame["label"].to_numpy(int), frame["prediction"].to_numpy(float)
    if len(set(label)) < 2:
        return None
    fpr, tpr, thresholds = roc_curve(label, score)
    return Roc(fpr.tolist(), tpr.tolist(), thresholds.tolist(), float(roc_auc_score(label, score)))


@dataclass(frozen=True)
class CalibrationBin:
    n: int
    predicted: float  # mean predicted probability in the bin
    observed: float  # share of lesions with PD in the bin


def calibration_bins(frame: pd.DataFrame, bins: int = CALIBRATION_BINS) -> list[CalibrationBin]:
    """Reliability diagram of a ``lesion_pd`` slice: lesions sorted by prediction and cut into
    ``bins`` groups of (nearly) equal size; ties stay together in the order of the ids."""
    ordered = frame.sort_values(["prediction", "id"], kind="mergesort")
    prediction = ordered["prediction"].to_numpy(float)
    label = ordered["label"].to_numpy(float)
    out = []
    for chunk in np.array_split(np.arange(len(ordered)), min(bins, len(ordered))):
        if chunk.size:
            out.append(
                CalibrationBin(
                    int(chunk.size), float(prediction[chunk].mean()), float(label[chunk].mean())
                )
            )
    return out


@dataclass(frozen=True)
class KmCurve:
    """One risk group's Kaplan-Meier curve, as steps from time 0 (survival 1)."""

    name: str  # "low risk" | "high risk"
    n: int
    time: list[float]
    survival: list[float]


@dataclass(frozen=True)
class RiskGroups:
    curves: list[KmCurve]
    p: float | None  # log-rank test of high against low; None with one group


def km_by_risk(frame: pd.DataFrame) -> RiskGroups:
    """Kaplan-Meier curves of an ``os``/``pfs`` slice split at the median predicted risk (above
    the median: high risk), and the log-rank p of the split."""
    from sksurv.compare import compare_survival
    from sksurv.nonparametric import kaplan_meier_estimator

    time = frame["time"].to_numpy(float)
    event = frame["event"].to_numpy(int).astype(bool)
    risk = frame["prediction"].to_numpy(float)
    high = risk > np.median(risk)
    curves = []
    for flag, name in ((False, "low risk"), (True, "high risk")):
        sel = high == flag
        if sel.sum() == 0:
            continue
        t, s = kaplan_meier_estimator(event[sel], time[sel])
        curves.append(KmCurve(name, int(sel.sum()), [0.0, *t.tolist()], [1.0, *s.tolist()]))
    p = None
    if 0 < high.sum() < len(high):
        y = np.empty(len(time), dtype=[("event", bool), ("time", float)])
        y["event"], y["time"] = event, time
        p = float(compare_survival(y, high.astype(int))[1])
    return RiskGroups(curves, p)
