"""The toolkit beside the model API: the tabular lesion classifier, helpers, the deep template."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from tiny_runs import PROJECT, model_config

from benchmark.api.cohort import Cohort, Outcomes
from benchmark.toolkit import LesionClassifier, burden, per_lesion


def _cohort(pd_labels: list[int]) -> tuple[Cohort, Outcomes]:
    """Three patients, ``len(pd_labels)`` lesions spread over the first two (P3 has none)."""
    n = len(pd_labels)
    ids = [f"L{i}" for i in range(n)]
    patients = pd.DataFrame({"arm": ["a", "b", "a"]}, index=pd.Index(["P1", "P2", "P3"]))
    lesions = pd.DataFrame(
        {
            "patient_id": ["P1" if i % 2 else "P2" for i in range(n)],
            "irradiated": [i % 3 == 0 for i in range(n)],
        },
        index=pd.Index(ids, name="lesion_id"),
    )
    cohort = Cohort("toy", patients, lesions, {}, {}, {})
    survival = pd.DataFrame(
        {"time": [1.0, 2.0, 3.0], "event": [True, False, True]}, index=patients.index
    )
    return cohort, Outcomes(pd.Series(pd_labels, index=lesions.index), survival, survival)


def _features(cohort: Cohort) -> pd.DataFrame:
    """Two radiomics-like columns per lesion, the volume among them."""
    k = np.arange(len(cohort.lesions), dtype=float)
    return pd.DataFrame(
        {"original_shape_MeshVolume": 100.0 + 50.0 * k, "texture": np.sin(k)},
        index=cohort.lesions.index,
    )


class Toy(LesionClassifier):
    """Radiomics plus a column from the cohort's lesion table, through the design hook."""

    def __init__(
        self,
        features: Callable[[Cohort], pd.DataFrame] = _features,
        estimator_factory: Callable[[], Any] = LogisticRegression,
        seed: int = 0,
    ) -> None:
        self.features = features
        self.estimator_factory = estimator_factory
        self.seed = seed
        self.entered = 0

    def design(self, cohort: Cohort) -> pd.DataFrame:
        irradiated = cohort.lesions["irradiated"].astype(float)
        return self.features(cohort).assign(irradiated=irradiated)

    def estimator(self) -> Any:
        return self.estimator_factory()

    def limits(self) -> AbstractContextManager:
        @contextmanager
        def counted() -> Iterator[None]:
            self.entered += 1
            yield

        return counted()


def test_the_design_is_what_the_classifier_fits_and_predicts():
    cohort, outcomes = _cohort([0, 1, 0, 1, 1, 0, 0, 1])
    model = Toy().fit(cohort, outcomes)
    assert model.columns_ == ["original_shape_MeshVolume", "texture", "irradiated"]
    assert model.model_.n_features_in_ == 3
    p_pd = model.predict(cohort)["lesion_pd"]
    assert list(p_pd.index) == cohort.lesion_ids
    expected = model.model_.predict_proba(model.design(cohort).to_numpy())[:, 1]
    np.testing.assert_array_equal(p_pd.to_numpy(), expected)
    assert model.entered == 2, "limits() is held around the fit and the prediction"
    assert model.caches() == {"features": _features}


def test_predict_reads_the_design_in_the_fitted_column_order():
    cohort, outcomes = _cohort([0, 1, 0, 1, 1, 0])
    model = Toy().fit(cohort, outcomes)
    before = model.predict(cohort)["lesion_pd"]
    model.features = lambda c: _features(c)[["texture", "original_shape_MeshVolume"]]
    pd.testing.assert_series_equal(model.predict(cohort)["lesion_pd"], before)


@pytest.mark.parametrize("label", [0, 1])
def test_a_fold_with_one_class_predicts_what_a_fitted_forest_would(label: int):
    """No classifier is fitted on one class; every lesion gets the fold's prevalence, which is
    what the forests of rf_radiomics and peritumoral_radiomics predicted when they fitted one."""
    cohort, outcomes = _cohort([label] * 5)
    model = Toy(estimator_factory=RandomForestClassifier).fit(cohort, outcomes)
    assert model.model_ is None
    p_pd = model.predict(cohort)["lesion_pd"]
    x = model.design(cohort).to_numpy()
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, [label] * 5)
    assert (forest.predict_proba(x)[:, 0] == 1.0).all() and forest.classes_[0] == label
    assert list(p_pd.index) == cohort.lesion_ids
    assert (p_pd == float(label)).all()


def test_a_forest_predicts_with_one_thread():
    cohort, outcomes = _cohort([0, 1, 0, 1, 1, 0, 0, 1])

    def forest() -> RandomForestClassifier:
        return RandomForestClassifier(n_estimators=20, n_jobs=2, random_state=0)

    model = Toy(estimator_factory=forest).fit(cohort, outcomes)
    assert model.model_.n_jobs == 2, "fits with the threads it is given"
    model.predict(cohort)
    assert model.model_.n_jobs == 1


def test_burden_counts_lesions_and_gives_a_patient_without_one_zero():
    cohort, _ = _cohort([0, 1, 0, 1, 1])
    rows = burden(cohort, _features(cohort))
    assert list(rows.index) == ["P1", "P2", "P3"]
    assert rows["n_lesions"].tolist() == [2, 3, 0]
    volumes = _features(cohort)["original_shape_MeshVolume"]
    assert rows.loc["P1", "total_volume_log"] == pytest.approx(
        np.log1p(volumes[["L1", "L3"]].sum())
    )
    assert rows.loc["P3", "total_volume_log"] == 0.0
    lesion_rows = per_lesion(rows, cohort, cohort.lesions.index)
    assert list(lesion_rows.index) == cohort.lesion_ids
    assert lesion_rows.loc["L3", "n_lesions"] == 2 and lesion_rows.loc["L4", "n_lesions"] == 3


def test_the_toolkit_imports_no_torch_until_a_deep_model_asks():
    code = (
        "import sys, benchmark.toolkit; assert 'torch' not in sys.modules, 'torch imported'; "
        "import benchmark.toolkit.deep; assert 'torch' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT, check=True)


def test_the_deep_template_trains_like_cnn3d(cache_dir: Path):
    """The deep template spells out the training settings cnn3d reads through its defaults
    list (a submission config has none): they must stay the same, at every preset."""
    for preset in ("cpu", "gpu"):
        ours = model_config("deep_template", cache_dir, f"hardware={preset}").model.submission
        theirs = model_config("cnn3d", cache_dir, f"hardware={preset}").model.submission
        train = OmegaConf.to_container(theirs.train, resolve=True)
        assert train.pop("_target_") == "benchmark.training.TrainSettings"
        assert OmegaConf.to_container(ours.train, resolve=True) == train, preset
        assert ours.crops == theirs.crops
