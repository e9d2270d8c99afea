"""The fixed protocol: folds, blinding of predict, and the prediction rules."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.api.cohort import (
    LESION_OUTCOME_COLUMNS,
    PATIENT_OUTCOME_COLUMNS,
    Cohort,
    LabelledCohort,
    Outcomes,
)
from benchmark.api.submission import FitContext, Submission, SubmissionError, check_predictions
from benchmark.evaluation.protocol import patient_folds, run_protocol


class ConstantModel(Submission):
    """Predicts the training prevalence and a constant risk; records what it was given."""

    tasks = ("lesion_pd", "os", "pfs")
    seen: list[tuple[str, Cohort]] = []

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(
        self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()
    ) -> ConstantModel:
        self.rate_ = float(outcomes.lesion_pd.mean())
        ConstantModel.seen.append(("fit", cohort))
        return self

    def predict(self, cohort: Cohort) -> dict[str, pd.Series]:
        ConstantModel.seen.append(("predict", cohort))
        return {
            "lesion_pd": pd.Series(self.rate_, index=cohort.lesion_ids),
            "os": pd.Series(0.0, index=cohort.patient_ids),
            "pfs": pd.Series(0.0, index=cohort.patient_ids),
        }


def _run(tiny_cohorts: dict[str, LabelledCohort], model=ConstantModel, fold_seed: int = 7):
    return run_protocol(
        model,
        "constant",
        ("pembro_rt", tiny_cohorts["pembro_rt"]),
        {k: tiny_cohorts[k].cohort for k in ("nivorad", "mdacc")},
        ("lesion_pd", "os", "pfs"),
        n_splits=3,
        fold_seed=fold_seed,
    )


def test_folds_group_patients_and_ignore_the_model_seed(tiny_cohorts):
    dev = tiny_cohorts["pembro_rt"]
    folds = patient_folds(dev.cohort, dev.outcomes, n_splits=3, fold_seed=7)
    assert sorted(folds.index) == sorted(dev.cohort.patient_ids)
    assert set(folds) == {0, 1, 2}
    # Same protocol seed, same folds; whatever the model seed is, it never enters here.
    pd.testing.assert_series_equal(folds, patient_folds(dev.cohort, dev.outcomes, 3, 7))
    assert not folds.equals(patient_folds(dev.cohort, dev.outcomes, 3, 8))


def test_every_id_is_predicted_once_out_of_fold(tiny_cohorts):
    ConstantModel.seen.clear()
    predictions, folds = _run(tiny_cohorts)
    cv = predictions[(predictions.cohort == "pembro_rt_cv") & (predictions.task == "lesion_pd")]
    dev = tiny_cohorts["pembro_rt"].cohort
    assert sorted(cv["id"]) == sorted(dev.lesion_ids)
    for key, name in (("nivorad", "nivorad"), ("mdacc", "mdacc")):
        ext = predictions[(predictions.cohort == key) & (predictions.task == "os")]
        assert sorted(ext["id"]) == sorted(tiny_cohorts[name].cohort.patient_ids)
    # Out of fold: no predicted patient was among those the model was fitted on just before.
    calls = ConstantModel.seen
    for (kind_fit, fitted), (kind_pred, predicted) in zip(calls[0:6:2], calls[1:6:2], strict=True):
        assert (kind_fit, kind_pred) == ("fit", "predict")
        assert not set(fitted.patient_ids) & set(predicted.patient_ids)


def test_predict_cannot_reach_outcomes(tiny_cohorts, tiny_root: Path):
    ConstantModel.seen.clear()
    _run(tiny_cohorts)
    outcome_columns = set(PATIENT_OUTCOME_COLUMNS) | set(LESION_OUTCOME_COLUMNS)
    predicted = [c for kind, c in ConstantModel.seen if kind == "predict"]
    assert predicted
    for cohort in predicted:
        # No outcome column in what predict sees ...
        assert not outcome_columns & set(cohort.patients.columns)
        assert not outcome_columns & set(cohort.lesions.columns)
        # ... no field of the view beyond the documented ones ...
        assert {f.name for f in dataclasses.fields(cohort)} == {
            "name",
            "patients",
            "lesions",
            "images",
            "masks",
            "content_keys",
        }
        # ... and no path to a table: the files live in a blinded folder of images only.
        for path in [*cohort.images.values(), *cohort.masks.values()]:
            assert tiny_root not in path.resolve().parents
            for parent in list(path.resolve().parents)[:3]:
                assert not list(parent.glob("*.csv")), f"a table is reachable from {path}"


class BrokenModel(ConstantModel):
    def __init__(self, seed: int = 0, how: str = "nan") -> None:
        super().__init__(seed)
        self.how = how

    def predict(self, cohort):
        preds = dict(super().predict(cohort))
        lesions = preds["lesion_pd"].copy()
        if self.how == "nan":
            lesions.iloc[0] = np.nan
        elif self.how == "missing":
            lesions = lesions.iloc[1:]
        elif self.how == "duplicate":
            lesions = pd.concat([lesions, lesions.iloc[:1]])
        elif self.how == "range":
            lesions.iloc[0] = 1.5
        elif self.how == "extra":
            lesions = pd.concat([lesions, pd.Series([0.5], index=["NOT-A-LESION"])])
        preds["lesion_pd"] = lesions
        return preds


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("nan", "non-finite predictions"),
        ("missing", "ids without a prediction"),
        ("duplicate", "more than once"),
        ("range", "outside [0, 1]"),
        ("extra", "unknown ids: NOT-A-LESION"),
    ],
)
def test_broken_predictions_fail_naming_the_model_rule_and_id(tiny_cohorts, how, expected):
    with pytest.raises(SubmissionError) as err:
        _run(tiny_cohorts, model=lambda: BrokenModel(how=how))
    message = str(err.value)
    assert message.startswith("constant on pembro_rt, task lesion_pd")
    assert expected in message
    if how in ("nan", "missing", "range"):
        assert any(lesion in message for lesion in tiny_cohorts["pembro_rt"].cohort.lesion_ids)


def test_check_predictions_rejects_a_missing_task(tiny_cohorts):
    cohort = tiny_cohorts["nivorad"].cohort
    with pytest.raises(SubmissionError, match="task os: no predictions"):
        check_predictions(
            "m", cohort, {"lesion_pd": pd.Series(0.5, index=cohort.lesion_ids)}, ("lesion_pd", "os")
        )


def test_a_fit_without_the_context_parameter_is_refused_before_any_work(tiny_cohorts):
    class OldStyle(ConstantModel):
        def fit(self, cohort, outcomes):  # the contract before the fit context
            raise AssertionError("must not be called")

    dev = tiny_cohorts["pembro_rt"]
    with pytest.raises(SubmissionError, match=r"old_style: fit\(cohort, outcomes\).*context"):
        run_protocol(OldStyle, "old_style", ("pembro_rt", dev), {}, ("lesion_pd",), 5, 0)


def test_each_fit_is_told_its_step_and_keeps_its_artefacts(tiny_cohorts, tmp_path: Path):
    """The protocol names each fit (fold<k>, final) and gives it its own artefact folder."""
    contexts: list[FitContext] = []

    class Recording(ConstantModel):
        def fit(self, cohort, outcomes, context: FitContext = FitContext()):
            contexts.append(context)
            self.n_train_ = len(cohort.patient_ids)
            return super().fit(cohort, outcomes, context)

        def save_artefacts(self, folder: Path) -> None:
            (folder / "n_train.txt").write_text(str(self.n_train_))

    dev = tiny_cohorts["pembro_rt"]
    run_protocol(
        lambda: Recording(seed=3),
        "recording",
        ("pembro_rt", dev),
        {"mdacc": tiny_cohorts["mdacc"].cohort},
        ("lesion_pd",),
        n_splits=3,
        fold_seed=0,
        run_context=FitContext(seed=3, device="cpu", workers=2, artefact_dir=tmp_path),
    )
    assert [c.fit for c in contexts] == ["fold0", "fold1", "fold2", "final"]
    assert {(c.seed, c.device, c.workers) for c in contexts} == {(3, "cpu", 2)}
    assert [c.artefact_dir for c in contexts] == [tmp_path / c.fit for c in contexts]
    kept = {p.parent.name: int(p.read_text()) for p in tmp_path.glob("*/n_train.txt")}
    assert kept["final"] == len(dev.cohort.patient_ids)
    assert sum(kept[f"fold{k}"] for k in range(3)) == 2 * len(dev.cohort.patient_ids)
