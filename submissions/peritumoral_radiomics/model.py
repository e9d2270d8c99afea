"""Random forest on radiomics inside the lesion mask plus rings of tissue around it.

Why: the tissue around a lesion carries response biology that the delineated lesion does not:
ground-glass halo and infiltrative margin in the lung, stranding or an oedematous rim elsewhere,
the immune front at the invasive margin. Peritumoral radiomics on baseline CT has predicted
response to chemotherapy and to immune checkpoint blockade in NSCLC (Khorrami et al., Radiology:
AI 2019; Vaidya et al., J Immunother Cancer 2020), beyond intratumoral features. This model is
the study's radiomics forest (``rf_radiomics``) with first-order and GLCM features of two rings,
0-3 mm and 3-6 mm outside the mask, added to each lesion's row.

Written against ``submissions/_template`` only: the harness's radiomics extractor and the
toolkit's ``LesionClassifier`` (the forest's fit and predict), nothing from ``baselines/``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd
from sklearn.ensemble import RandomForestClassifier

from benchmark.api import Cohort, LesionCache
from benchmark.toolkit import LesionClassifier
from submissions.peritumoral_radiomics.rings import ring_cohort


class PeritumoralRadiomicsForest(LesionClassifier):
    """scikit-learn random forest on intra-lesion radiomics + peritumoral ring radiomics.

    ``features`` extracts inside the mask (the harness's default extractor); ``ring_features``
    is the extractor run on each ring mask (``rings_mm``: [inner, outer] pairs in mm); ring masks
    are cached under ``ring_dir`` by content, like every other per-lesion artefact.
    """

    def __init__(
        self,
        features: Callable[[Cohort], pd.DataFrame],
        ring_features: Callable[[Cohort], pd.DataFrame],
        ring_dir: str | Path,
        rings_mm: Sequence[Sequence[float]] = ((0.0, 3.0), (3.0, 6.0)),
        n_estimators: int = 500,
        max_features: str | float = "sqrt",
        min_samples_leaf: int = 3,
        class_weight: str | None = "balanced_subsample",
        n_jobs: int = 1,
        seed: int = 0,
    ) -> None:
        self.features = features
        self.ring_features = ring_features
        self.ring_dir = ring_dir
        self.rings_mm = rings_mm
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.min_samples_leaf = min_samples_leaf
        self.class_weight = class_weight
        self.n_jobs = n_jobs
        self.seed = seed

    def design(self, cohort: Cohort) -> pd.DataFrame:
        """The radiomics inside the mask (``mask_*``) and of each ring (``ring0-3mm_*``, ...)."""
        parts = [self.features(cohort).add_prefix("mask_")]
        for inner, outer in self.rings_mm:
            rings = ring_cohort(cohort, float(inner), float(outer), self.ring_dir)
            parts.append(self.ring_features(rings).add_prefix(f"ring{inner:g}-{outer:g}mm_"))
        return pd.concat(parts, axis=1)

    def estimator(self) -> RandomForestClassifier:
        return RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_features=self.max_features,
            min_samples_leaf=self.min_samples_leaf,
            class_weight=self.class_weight,
            n_jobs=self.n_jobs,
            random_state=self.seed,
        )

    def caches(self) -> Mapping[str, LesionCache]:
        """The radiomics inside the mask and of the ring masks, filled by predict."""
        return {"features": self.features, "ring_features": self.ring_features}

    def prepare(self, cohort: Cohort) -> None:
        """The ring masks and both feature sets: ``ring_features`` reads the rings, not the
        cohort's own masks, so the default (every cache on the cohort) would miss them."""
        self.design(cohort)
