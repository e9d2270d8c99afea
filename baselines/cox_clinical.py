"""Clinical-only Cox model (PD-L1 + treatment arm): the floor every imaging model must beat."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sksurv.linear_model import CoxPHSurvivalAnalysis

from benchmark.api import Cohort, FitContext, Outcomes, Predictions, Submission
from benchmark.features.clinical import ClinicalEncoder


class ClinicalCox(Submission):
    """Cox proportional hazards on clinical covariates only; the risk is the linear predictor."""

    tasks = ("os", "pfs")

    def __init__(
        self,
        covariates: Sequence[str] = ("pdl1", "arm"),
        pdl1_coding: str = "category",
        alpha: float = 0.01,
        seed: int = 0,
    ) -> None:
        self.covariates = covariates
        self.pdl1_coding = pdl1_coding
        self.alpha = alpha  # small ridge penalty: keeps rare categories (tiny cohorts) finite
        self.seed = seed  # the fit is deterministic; kept for the common constructor

    def fit(
        self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()
    ) -> ClinicalCox:
        self.encoder_ = ClinicalEncoder(self.covariates, self.pdl1_coding).fit(cohort.patients)
        x = self.encoder_.transform(cohort.patients)
        self.models_ = {
            task: CoxPHSurvivalAnalysis(alpha=self.alpha, ties="efron").fit(
                x, outcomes.survival(task)
            )
            for task in self.tasks
        }
        return self

    def predict(self, cohort: Cohort) -> Predictions:
        x = self.encoder_.transform(cohort.patients)
        return {
            task: pd.Series(model.predict(x), index=cohort.patient_ids)
            for task, model in self.models_.items()
        }
