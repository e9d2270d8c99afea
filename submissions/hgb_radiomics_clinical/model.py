"""Histogram gradient boosting for per-lesion progressive disease.

Why these inputs: in metastatic NSCLC on PD-1 blockade the fate of one lesion depends on the
lesion (size, margin, texture: the radiomics), on where it is and whether it was in the SABR
field (an irradiated lesion is locally controlled in most cases; the abscopal question concerns
the others), and on the patient (PD-L1 expression, treatment arm, tumour burden). A random forest
on radiomics alone (the study's baseline, AUC 0.57) sees only the first. Boosted trees take all
three, and their interactions, without scaling or imputation (missing PD-L1 is its own branch).

Written against ``submissions/_template`` only: the harness's feature helpers and the
toolkit's ``LesionClassifier``, nothing from ``baselines/``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from benchmark.api import Cohort, FitContext, Outcomes
from benchmark.features.clinical import ClinicalEncoder
from benchmark.toolkit import LesionClassifier, burden, per_lesion

SITES = ("lung", "lymph_node", "liver", "adrenal", "bone", "pleura", "brain", "other")


class GradientBoostedLesionPD(LesionClassifier):
    """scikit-learn ``HistGradientBoostingClassifier`` on one row per lesion.

    Columns: the lesion's pyradiomics features; ``irradiated`` and a one-hot ``site``; the
    patient's clinical covariates (``clinical``, encoded by ``ClinicalEncoder``); the patient's
    tumour burden (log total lesion volume, number of lesions). ``max_features`` < 1 samples
    features per split, so the seed matters; everything else is deterministic.
    """

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

    def design(self, cohort: Cohort) -> pd.DataFrame:
        radiomics = self.features(cohort)
        lesions = cohort.lesions.loc[radiomics.index]
        parts = [radiomics]
        if self.lesion_context:
            site = lesions["site"].where(lesions["site"].isin(SITES), "other")
            onehot = pd.DataFrame(
                {f"site_{s}": (site == s).astype(float) for s in SITES}, index=lesions.index
            )
            parts += [lesions[["irradiated"]].astype(float), onehot]
        patient = burden(cohort, radiomics)
        if self.clinical:
            patient = patient.join(self.encoder_.transform(cohort.patients))
        parts.append(per_lesion(patient, cohort, radiomics.index))
        return pd.concat(parts, axis=1)

    def estimator(self) -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(
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

    def limits(self) -> AbstractContextManager:
        return threadpool_limits(limits=self.threads, user_api="openmp")

    def fit(
        self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()
    ) -> GradientBoostedLesionPD:
        if self.clinical:  # the encoding of the training patients, before the design uses it
            self.encoder_ = ClinicalEncoder(self.clinical, self.pdl1_coding).fit(cohort.patients)
        return super().fit(cohort, outcomes, context)
