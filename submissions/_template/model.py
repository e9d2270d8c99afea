"""Template submission: copy this folder, rename, replace the model. It runs as it is.

    cp -r submissions/_template submissions/my_model
    # rename conf/model/template.yaml -> my_model.yaml; in it set name: my_model and
    # _target_: submissions.my_model.model.<YourClass>; fill in model_card.yaml and README.md
    python -m benchmark model=my_model data=tiny     # seconds; then without data=tiny

What the harness guarantees (benchmark/submission.py): ``fit`` gets the training patients of the
development cohort and their outcomes; ``predict`` gets a cohort view with NO outcomes (external
cohorts, or the held-out fold) and must return one prediction per lesion / patient for every task
in ``tasks``. Hyper-parameters are constructor arguments, set from the YAML config, and stored
unchanged; learned state goes in attributes ending in ``_`` (the scikit-learn convention).

This example predicts
- ``lesion_pd``: a logistic regression on the lesion's radiomics features;
- ``os`` / ``pfs``: a ridge Cox model on tumour burden (from the radiomics) and clinical covariates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sksurv.linear_model import CoxPHSurvivalAnalysis

from benchmark.cohort import Cohort, Outcomes
from benchmark.features.aggregate import aggregate_lesions
from benchmark.features.clinical import ClinicalEncoder
from benchmark.submission import FitContext, LesionCache, Predictions, Submission


class TemplateModel(Submission):
    """Logistic regression on radiomics (lesion_pd) + ridge Cox on burden and clinical (os, pfs)."""

    # The tasks this model predicts, among "lesion_pd", "os", "pfs"; keep those you implement.
    tasks = ("lesion_pd", "os", "pfs")

    def __init__(
        self,
        features: Callable[[Cohort], pd.DataFrame],
        clinical: Sequence[str] = ("pdl1", "arm"),
        C: float = 0.1,
        alpha: float = 1.0,
        seed: int = 0,
    ) -> None:
        # Store, don't compute: Hydra builds one instance per fold from the YAML config.
        self.features = features  # benchmark.features.radiomics.RadiomicsExtractor (cached)
        self.clinical = clinical
        self.C = C
        self.alpha = alpha
        self.seed = seed  # always accepted: the harness passes the run's seed; use it for any RNG

    def _patients(self, cohort: Cohort) -> pd.DataFrame:
        """One row per patient: tumour burden + encoded clinical covariates."""
        burden = aggregate_lesions(
            self.features(cohort),
            cohort.lesions["patient_id"],
            cohort.patient_ids,
            rule="largest",
        )[["total_volume_log", "n_lesions"]]
        return burden.join(self.encoder_.transform(cohort.patients))

    def caches(self) -> Mapping[str, LesionCache]:
        """The per-lesion radiomics (content-keyed JSON files), filled by predict."""
        return {"features": self.features}

    def fit(
        self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()
    ) -> TemplateModel:
        lesions = self.features(cohort)  # one row per lesion (index lesion_id), float columns
        self.columns_ = list(lesions.columns)
        y = outcomes.lesion_pd.loc[lesions.index].to_numpy()
        self.prevalence_ = float(y.mean()) if len(y) else 0.5
        self.lesion_model_ = None
        if len(np.unique(y)) == 2:  # a small training fold can hold one class only
            self.lesion_model_ = make_pipeline(
                StandardScaler(), LogisticRegression(C=self.C, max_iter=2000)
            ).fit(lesions.to_numpy(), y)

        self.encoder_ = ClinicalEncoder(self.clinical).fit(cohort.patients)
        x = self._patients(cohort)
        self.cox_ = {
            task: CoxPHSurvivalAnalysis(alpha=self.alpha).fit(x, outcomes.survival(task))
            for task in ("os", "pfs")
        }
        return self

    def predict(self, cohort: Cohort) -> Predictions:
        lesions = self.features(cohort)[self.columns_]
        if self.lesion_model_ is None:
            p_pd = np.full(len(lesions), self.prevalence_)
        else:
            p_pd = self.lesion_model_.predict_proba(lesions.to_numpy())[:, 1]
        x = self._patients(cohort)
        return {
            # lesion_pd: probability of progression in [0, 1], indexed by lesion_id
            "lesion_pd": pd.Series(p_pd, index=lesions.index),
            # os / pfs: a risk score, higher = worse (shorter survival), indexed by patient_id
            **{
                task: pd.Series(m.predict(x), index=cohort.patient_ids)
                for task, m in self.cox_.items()
            },
        }
