"""Logistic regression on lesion volume alone: the floor every per-lesion PD model must beat.

Why a floor: whether a lesion meets RECIST progression (>= 20 % and >= 5 mm growth) depends on
its size (a 10 mm lesion needs 50 % growth, a 25 mm one 20 %), and size is the one thing any
image model sees for free (a mask channel, a shape feature). A model below this line has not
learnt what a ruler gives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from benchmark.cohort import Cohort, Outcomes
from benchmark.submission import FitContext, LesionCache, Predictions, Submission


class VolumeLogistic(Submission):
    """scikit-learn logistic regression of PD on log lesion volume (``volume_feature``)."""

    tasks = ("lesion_pd",)

    def __init__(
        self,
        features: Callable[[Cohort], pd.DataFrame],
        volume_feature: str = "original_shape_MeshVolume",
        seed: int = 0,
    ) -> None:
        self.features = features
        self.volume_feature = volume_feature
        self.seed = seed

    def _log_volume(self, cohort: Cohort) -> pd.DataFrame:
        features = self.features(cohort)
        if self.volume_feature not in features:
            raise ValueError(
                f"lr_volume needs the radiomics feature {self.volume_feature!r}; enable the "
                "shape class of the radiomics extractor"
            )
        return np.log(features[[self.volume_feature]].clip(lower=1e-3))

    def caches(self) -> Mapping[str, LesionCache]:
        """The per-lesion radiomics (content-keyed JSON files), filled by predict."""
        return {"features": self.features}

    def fit(
        self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()
    ) -> VolumeLogistic:
        x = self._log_volume(cohort)
        y = outcomes.lesion_pd.loc[x.index].to_numpy()
        self.prevalence_ = float(y.mean()) if len(y) else 0.5
        self.model_ = None
        if len(np.unique(y)) == 2:  # a small training fold can hold one class only
            self.model_ = LogisticRegression().fit(x.to_numpy(), y)
        return self

    def predict(self, cohort: Cohort) -> Predictions:
        x = self._log_volume(cohort)
        if self.model_ is None:
            p_pd = np.full(len(x), self.prevalence_)
        else:
            p_pd = self.model_.predict_proba(x.to_numpy())[:, 1]
        return {"lesion_pd": pd.Series(p_pd, index=x.index)}
