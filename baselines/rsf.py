"""Random survival forest on per-patient radiomics, optionally with clinical covariates."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
from sklearn.impute import SimpleImputer
from sksurv.ensemble import RandomSurvivalForest

from benchmark.cohort import Cohort, Outcomes
from benchmark.features.aggregate import aggregate_lesions
from benchmark.features.clinical import ClinicalEncoder
from benchmark.submission import Predictions, Submission


class RandomSurvivalForestModel(Submission):
    """scikit-survival RSF; lesion features aggregated per patient by ``aggregation`` (config).

    With ``clinical`` empty this is the study's radiomics RSF (C-index 0.63 OS / 0.59 PFS);
    with ``clinical=[pdl1, arm]`` the one with PD-L1 and treatment arm added (0.67 / 0.65).
    """

    tasks = ("os", "pfs")

    def __init__(
        self,
        features: Callable[[Cohort], pd.DataFrame],
        aggregation: str = "volume_weighted",
        volume_feature: str = "original_shape_MeshVolume",
        clinical: Sequence[str] = (),
        pdl1_coding: str = "category",
        n_estimators: int = 500,
        min_samples_leaf: int = 5,
        max_features: str | float | None = "sqrt",
        n_jobs: int = 1,
        seed: int = 0,
    ) -> None:
        self.features = features
        self.aggregation = aggregation
        self.volume_feature = volume_feature
        self.clinical = clinical
        self.pdl1_coding = pdl1_coding
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.n_jobs = n_jobs
        self.seed = seed

    def _design(self, cohort: Cohort) -> pd.DataFrame:
        x = aggregate_lesions(
            self.features(cohort),
            cohort.lesions["patient_id"],
            cohort.patient_ids,
            rule=self.aggregation,
            volume_feature=self.volume_feature,
        )
        if self.clinical:
            x = x.join(self.encoder_.transform(cohort.patients))
        return x

    def fit(self, cohort: Cohort, outcomes: Outcomes) -> RandomSurvivalForestModel:
        if self.clinical:
            self.encoder_ = ClinicalEncoder(self.clinical, self.pdl1_coding).fit(cohort.patients)
        x = self._design(cohort)
        self.columns_ = list(x.columns)
        # Patients without a lesion have no radiomics: median-impute (burden columns are 0 already).
        self.imputer_ = SimpleImputer(strategy="median", keep_empty_features=True).fit(x)
        x_train = self.imputer_.transform(x)
        self.forests_ = {
            task: RandomSurvivalForest(
                n_estimators=self.n_estimators,
                min_samples_leaf=self.min_samples_leaf,
                max_features=self.max_features,
                n_jobs=self.n_jobs,
                random_state=self.seed,
            ).fit(x_train, outcomes.survival(task))
            for task in self.tasks
        }
        return self

    def predict(self, cohort: Cohort) -> Predictions:
        x = self.imputer_.transform(self._design(cohort)[self.columns_])
        for forest in self.forests_.values():
            forest.n_jobs = 1  # threaded prediction sums trees in finishing order: not reproducible
        # RSF.predict is the ensemble's summed cumulative hazard: higher = worse, our convention.
        return {
            task: pd.Series(forest.predict(x), index=cohort.patient_ids)
            for task, forest in self.forests_.items()
        }
