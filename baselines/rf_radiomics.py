"""Random forest on pyradiomics features for per-lesion progressive disease."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd
from sklearn.ensemble import RandomForestClassifier

from benchmark.cohort import Cohort, Outcomes
from benchmark.submission import FitContext, LesionCache, Predictions, Submission


class RadiomicsRandomForest(Submission):
    """scikit-learn random forest on the lesion's radiomics features (no clinical covariates)."""

    tasks = ("lesion_pd",)

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

    def caches(self) -> Mapping[str, LesionCache]:
        """The per-lesion radiomics (content-keyed JSON files), filled by predict."""
        return {"features": self.features}

    def fit(
        self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()
    ) -> RadiomicsRandomForest:
        x = self.features(cohort)
        self.columns_ = list(x.columns)
        self.forest_ = RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_features=self.max_features,
            min_samples_leaf=self.min_samples_leaf,
            class_weight=self.class_weight,
            n_jobs=self.n_jobs,
            random_state=self.seed,
        ).fit(x.to_numpy(), outcomes.lesion_pd.loc[x.index].to_numpy())
        return self

    def predict(self, cohort: Cohort) -> Predictions:
        x = self.features(cohort)[self.columns_]
        # One thread: threaded prediction sums the trees in finishing order, which changes the
        # last bits of the probabilities from run to run.
        self.forest_.n_jobs = 1
        proba = self.forest_.predict_proba(x.to_numpy())
        classes = list(self.forest_.classes_)
        # A training split with one class only (tiny cohorts) predicts that class for everyone.
        p_pd = proba[:, classes.index(1)] if 1 in classes else 0.0 * proba[:, 0]
        return {"lesion_pd": pd.Series(p_pd, index=x.index)}
