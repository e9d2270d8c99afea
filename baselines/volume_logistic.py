"""Logistic regression on lesion volume alone: the floor every per-lesion PD model must beat.

Why a floor: whether a lesion meets RECIST progression (>= 20 % and >= 5 mm growth) depends on
its size (a 10 mm lesion needs 50 % growth, a 25 mm one 20 %), and size is the one thing any
image model sees for free (a mask channel, a shape feature). A model below this line has not
learnt what a ruler gives.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from benchmark.api import Cohort
from benchmark.toolkit import LesionClassifier


class VolumeLogistic(LesionClassifier):
    """scikit-learn logistic regression of PD on log lesion volume (``volume_feature``)."""

    def __init__(
        self,
        features: Callable[[Cohort], pd.DataFrame],
        volume_feature: str = "original_shape_MeshVolume",
        seed: int = 0,
    ) -> None:
        self.features = features
        self.volume_feature = volume_feature
        self.seed = seed

    def design(self, cohort: Cohort) -> pd.DataFrame:
        """The lesions' log volume, one column."""
        features = self.features(cohort)
        if self.volume_feature not in features:
            raise ValueError(
                f"lr_volume needs the radiomics feature {self.volume_feature!r}; enable the "
                "shape class of the radiomics extractor"
            )
        return np.log(features[[self.volume_feature]].clip(lower=1e-3))

    def estimator(self) -> LogisticRegression:
        return LogisticRegression()
