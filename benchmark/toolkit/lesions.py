"""A per-lesion PD classifier on a table: the body of the tabular lesion models.

A subclass says what a lesion's row holds (:meth:`LesionClassifier.design`) and which
scikit-learn classifier learns from it (:meth:`LesionClassifier.estimator`); fitting, the
one-class fold, one thread to predict and the declared cache are the same for every such model,
so two of them differ by their design and their classifier only.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import pandas as pd

from benchmark.api.cohort import Cohort, Outcomes
from benchmark.api.submission import FitContext, LesionCache, Predictions, Submission
from benchmark.toolkit.estimators import one_thread, positive_proba, prevalence, two_classes


class LesionClassifier(Submission):
    """Fits ``estimator()`` to ``design(cohort)`` and the lesions' PD; predicts p(PD) per lesion.

    ``features`` is the harness's radiomics extractor (``features: ${radiomics}``), declared as
    the model's cache. A training fold with one class gets no classifier: every lesion is then
    predicted at that fold's prevalence (0 or 1), which is what a fitted forest would give.
    """

    tasks: tuple[str, ...] = ("lesion_pd",)
    features: Callable[[Cohort], pd.DataFrame]

    @abstractmethod
    def design(self, cohort: Cohort) -> pd.DataFrame:
        """One row per lesion of ``cohort`` (index lesion_id), numeric columns."""

    @abstractmethod
    def estimator(self) -> Any:
        """A fresh, unfitted scikit-learn classifier, seeded from ``self.seed``."""

    def limits(self) -> AbstractContextManager:
        """Held around fit and predict, e.g. ``threadpool_limits`` for an OpenMP model."""
        return nullcontext()

    def caches(self) -> Mapping[str, LesionCache]:
        """The per-lesion radiomics (content-keyed JSON files), filled by predict."""
        return {"features": self.features}

    def fit(
        self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()
    ) -> LesionClassifier:
        x = self.design(cohort)
        self.columns_ = list(x.columns)
        y = outcomes.lesion_pd.loc[x.index].to_numpy()
        self.prevalence_ = prevalence(y)
        self.model_ = None
        if two_classes(y):
            with self.limits():
                self.model_ = self.estimator().fit(x.to_numpy(), y)
        return self

    def predict(self, cohort: Cohort) -> Predictions:
        return {"lesion_pd": self.predict_lesions(self.design(cohort))}

    def predict_lesions(self, x: pd.DataFrame) -> pd.Series:
        """p(PD) of the rows of a design (index lesion_id), in the fitted columns' order."""
        x = x[self.columns_]
        if self.model_ is None:
            return pd.Series(np.full(len(x), self.prevalence_), index=x.index)
        with self.limits():
            p_pd = positive_proba(one_thread(self.model_), x.to_numpy())
        return pd.Series(p_pd, index=x.index)


__all__ = ["LesionClassifier"]
