"""Histogram gradient boosting for per-lesion progressive disease.

Why these inputs: in metastatic NSCLC on PD-1 blockade the fate of one lesion depends on the
lesion (size, margin, texture: the radiomics), on where it is and whether it was in the SABR
field (an irradiated lesion is locally controlled in most cases; the abscopal question concerns
the others), and on the patient (PD-L1 expression, treatment arm, tumour burden). A random forest
on radiomics alone (the study's baseline, AUC 0.57) sees only the first. Boosted trees take all
three, and their interactions, without scaling or imputation (missing PD-L1 is its own branch).

Written against ``submissions/_template`` only: the harness's feature helpers, nothing from
``baselines/``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from benchmark.cohort import Cohort, Outcomes
from benchmark.features.aggregate import aggregate_lesions
from benchmark.features.clinical import ClinicalEncoder
from benchmark.submission import FitContext, LesionCache, Predictions, Submission

SITES = ("lung", "lymph_node", "liver", "adrenal", "bone", "pleura", "brain", "other")


class GradientBoostedLesionPD(Submission):
    """scikit-learn ``HistGradientBoostingClassifier`` on one row per lesion.

    Columns: the lesion's pyradiomics features; ``irradiated`` and a one-hot ``site``; the
    patient's clinical covariates (``clinical``, encoded by ``ClinicalEncoder``); the patient's
    tumour burden (log total lesion volume, number of lesions). ``max_features`` < 1 samples
    features per split, so the seed matters; everything else is deterministic.
    """

    tasks = ("lesion_pd",)

    def __init__(
        self,
        features: Callable[[Cohort], pd.DataFrame],
        clinical: Sequence[str] = ("pdl1", "arm"),
        pdl1_coding: str = "tps",
        lesion_context: bool = True,
        learning_rate: float = 0.05,
        max_iter: int = 200,
        max_leaf_nodes: int = 8,
        min_samples_leaf: int = 10,
        l2_regularization: float = 1.0,
        max_features: float = 0.5,
        class_weight: str | None = "balanced",
        threads: int = 1,
        seed: int = 0,
    ) -> None:
        self.features = features
        self.clinical = clinical
        self.pdl1_coding = pdl1_coding
        self.lesion_context = lesion_context
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.max_features = max_features
        self.class_weight = class_weight
        # OpenMP threads of the boosting. One: with ~300 rows per fold each round is a few
        # microseconds of work per thread, and on a shared 2-core box a second thread waits at
        # every barrier (measured 25x slower with the default thread count and one other job).
        self.threads = threads
        self.seed = seed

    def _design(self, cohort: Cohort) -> pd.DataFrame:
        radiomics = self.features(cohort)
        lesions = cohort.lesions.loc[radiomics.index]
        parts = [radiomics]
        if self.lesion_context:
            site = lesions["site"].where(lesions["site"].isin(SITES), "other")
            onehot = pd.DataFrame(
                {f"site_{s}": (site == s).astype(float) for s in SITES}, index=lesions.index
            )
            parts += [lesions[["irradiated"]].astype(float), onehot]
        burden = aggregate_lesions(
            radiomics, lesions["patient_id"], cohort.patient_ids, rule="largest"
        )[["total_volume_log", "n_lesions"]]
        patient = burden
        if self.clinical:
            patient = burden.join(self.encoder_.transform(cohort.patients))
        parts.append(patient.loc[lesions["patient_id"]].set_axis(lesions.index))
        return pd.concat(parts, axis=1)

    def caches(self) -> Mapping[str, LesionCache]:
        """The per-lesion radiomics (content-keyed JSON files), filled by predict."""
        return {"features": self.features}

    def fit(
        self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()
    ) -> GradientBoostedLesionPD:
        if self.clinical:
            self.encoder_ = ClinicalEncoder(self.clinical, self.pdl1_coding).fit(cohort.patients)
        x = self._design(cohort)
        self.columns_ = list(x.columns)
        y = outcomes.lesion_pd.loc[x.index].to_numpy()
        self.prevalence_ = float(y.mean()) if len(y) else 0.5
        self.model_ = None
        if len(np.unique(y)) == 2:  # a tiny training fold can hold one class only
            model = HistGradientBoostingClassifier(
                learning_rate=self.learning_rate,
                max_iter=self.max_iter,
                max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=self.min_samples_leaf,
                l2_regularization=self.l2_regularization,
                max_features=self.max_features,
                class_weight=self.class_weight,
                early_stopping=False,  # a fixed number of rounds: no random validation split
                random_state=self.seed,
            )
            with threadpool_limits(limits=self.threads, user_api="openmp"):
                self.model_ = model.fit(x.to_numpy(), y)
        return self

    def predict(self, cohort: Cohort) -> Predictions:
        x = self._design(cohort)[self.columns_]
        if self.model_ is None:
            p_pd = np.full(len(x), self.prevalence_)
        else:
            with threadpool_limits(limits=self.threads, user_api="openmp"):
                proba = self.model_.predict_proba(x.to_numpy())
            p_pd = proba[:, list(self.model_.classes_).index(1)]
        return {"lesion_pd": pd.Series(p_pd, index=x.index)}
