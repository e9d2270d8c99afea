"""Template submission: copy this folder, rename, replace the model. It runs as it is.

    cp -r submissions/_template submissions/my_model
    # rename conf/model/template.yaml -> my_model.yaml; in it set name: my_model and
    # _target_: submissions.my_model.model.<YourClass>; fill in model_card.yaml and README.md
    python -m benchmark model=my_model data=tiny     # seconds; then without data=tiny

What the harness guarantees (benchmark/api/submission.py): ``fit`` gets the training patients of the
development cohort and their outcomes; ``predict`` gets a cohort view with NO outcomes (external
cohorts, or the held-out fold) and must return one prediction per lesion / patient for every task
in ``tasks``. Hyper-parameters are constructor arguments, set from the YAML config, and stored
unchanged; learned state goes in attributes ending in ``_`` (the scikit-learn convention).

This example predicts
- ``lesion_pd``: a logistic regression on the lesion's radiomics features, on the toolkit's
  ``LesionClassifier`` (benchmark/toolkit/: you write the lesion's row and the classifier; the
  fit, a training fold with one class and the prediction are done there);
- ``os`` / ``pfs``: a ridge Cox model on tumour burden (from the radiomics) and clinical covariates.

A deep model starts from ``submissions/_deep_template`` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sksurv.linear_model import CoxPHSurvivalAnalysis

from benchmark.api import Cohort, FitContext, Outcomes, Predictions
from benchmark.features.clinical import ClinicalEncoder
from benchmark.toolkit import LesionClassifier, burden


class TemplateModel(LesionClassifier):
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

    def design(self, cohort: Cohort) -> pd.DataFrame:
        """lesion_pd's input: one row per lesion (index lesion_id), float columns."""
        return self.features(cohort)

    def estimator(self) -> Pipeline:
        """lesion_pd's classifier, fresh for each fit (LesionClassifier fits and predicts it)."""
        return make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=2000))

    def _patients(self, cohort: Cohort) -> pd.DataFrame:
        """One row per patient: tumour burden + encoded clinical covariates."""
        return burden(cohort, self.features(cohort)).join(self.encoder_.transform(cohort.patients))

    def fit(
        self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()
    ) -> TemplateModel:
        super().fit(cohort, outcomes, context)  # lesion_pd; learned state ends in "_"
        self.encoder_ = ClinicalEncoder(self.clinical).fit(cohort.patients)
        x = self._patients(cohort)
        self.cox_ = {
            task: CoxPHSurvivalAnalysis(alpha=self.alpha).fit(x, outcomes.survival(task))
            for task in ("os", "pfs")
        }
        return self

    def predict(self, cohort: Cohort) -> Predictions:
        x = self._patients(cohort)
        return {
            # lesion_pd: probability of progression in [0, 1], indexed by lesion_id
            **super().predict(cohort),
            # os / pfs: a risk score, higher = worse (shorter survival), indexed by patient_id
            **{
                task: pd.Series(m.predict(x), index=cohort.patient_ids)
                for task, m in self.cox_.items()
            },
        }
