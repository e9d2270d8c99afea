"""Random forest on pyradiomics features for per-lesion progressive disease."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from sklearn.ensemble import RandomForestClassifier

from benchmark.api import Cohort
from benchmark.toolkit import LesionClassifier


class RadiomicsRandomForest(LesionClassifier):
    """scikit-learn random forest on the lesion's radiomics features (no clinical covariates)."""

    def __init__(
        self,
        features: Callable[[Cohort], pd.DataFrame],
        n_estimators: int = 500,
        max_features: str | float = "sqrt",
        min_samples_leaf: int = 3,
        class_weight: str | None = "balanced_subsample",
        n_jobs: int = 1,
        seed: int = 0,
    ) -> None:
        self.features = features
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.min_samples_leaf = min_samples_leaf
        self.class_weight = class_weight
        self.n_jobs = n_jobs
        self.seed = seed

    def design(self, cohort: Cohort) -> pd.DataFrame:
        return self.features(cohort)

    def estimator(self) -> RandomForestClassifier:
        return RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_features=self.max_features,
            min_samples_leaf=self.min_samples_leaf,
            class_weight=self.class_weight,
            n_jobs=self.n_jobs,  # fits in parallel; predicts with one thread (LesionClassifier)
            random_state=self.seed,
        )
