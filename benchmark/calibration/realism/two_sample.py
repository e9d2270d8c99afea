"""The classifier two-sample test: can a model tell real patches from simulated ones?

A random forest on the patch features is cross-validated with whole scans held out (a scan's
patches are alike, so a patch of a training scan in the test fold would flatter the forest); its
out-of-fold AUC for "real" is the test statistic: 0.5 when the simulation is indistinguishable,
1.0 when every patch gives itself away. The 95% CI is a bootstrap over scans: with two real
scans it is wide, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import StratifiedGroupKFold

from benchmark.evaluation.metrics import lesion_pd_metrics


@dataclass(frozen=True)
class TwoSample:
    auc: float
    ci95: tuple[float, float] | None
    n_real: int
    n_simulated: int
    n_real_scans: int
    n_simulated_scans: int
    top_features: list[str]  # what gives the simulation away, most first

    def to_dict(self) -> dict:
        return {
            "auc": round(self.auc, 3),
            "ci95": None if self.ci95 is None else [round(v, 3) for v in self.ci95],
            "n_real": self.n_real,
            "n_simulated": self.n_simulated,
            "n_real_scans": self.n_real_scans,
            "n_simulated_scans": self.n_simulated_scans,
            "top_features": self.top_features,
        }


def two_sample_auc(
    features: pd.DataFrame, is_real: np.ndarray, scan: np.ndarray, seed: int = 0
) -> TwoSample:
    """Out-of-fold AUC of real vs simulated, scans held out together."""
    x = features.replace([np.inf, -np.inf], np.nan)
    x = x.fillna(x.median()).fillna(0.0).to_numpy(float)
    y = np.asarray(is_real, int)
    n_real_scans = len(np.unique(scan[y == 1]))
    folds = StratifiedGroupKFold(
        n_splits=max(2, min(5, n_real_scans)), shuffle=True, random_state=seed
    )
    oof = np.full(len(y), np.nan)
    importance = np.zeros(x.shape[1])
    for train, test in folds.split(x, y, groups=scan):
        forest = RandomForestClassifier(
            n_estimators=300,
            min_samples_leaf=3,
            class_weight="balanced",
            random_state=seed,
            n_jobs=1,
        ).fit(x[train], y[train])
        oof[test] = forest.predict_proba(x[test])[:, 1]
        importance += forest.feature_importances_
    auc = lesion_pd_metrics(y, oof, scan, n_boot=1000, seed=seed)["auc"]
    order = np.argsort(importance)[::-1][:5]
    return TwoSample(
        float(auc.value),
        auc.ci95,
        int(y.sum()),
        int((1 - y).sum()),
        n_real_scans,
        len(np.unique(scan[y == 0])),
        [str(features.columns[i]) for i in order],
    )
