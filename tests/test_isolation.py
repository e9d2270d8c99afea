"""sandbox=process: submission code runs in worker processes that hold no label they may not see."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from benchmark.isolation import LimitExceeded, Limits, isolated_factory
from benchmark.protocol import run_protocol
from benchmark.submission import SubmissionError


def _external_auc(tiny_cohorts, target: str, sandbox: str) -> dict[str, float]:
    """AUC per predicted cohort key of the attack ``target`` run through the protocol."""
    make_model = isolated_factory(target, {"_target_": f"attacks.{target}"}, 0, sandbox)
    predictions, _ = run_protocol(
        make_model,
        target,
        ("pembro_rt", tiny_cohorts["pembro_rt"]),
        {"mdacc": tiny_cohorts["mdacc"].cohort},
        ("lesion_pd",),
        n_splits=3,
        fold_seed=0,
    )
    labels = pd.concat([c.outcomes.lesion_pd for c in tiny_cohorts.values()])
    return {
        key: roc_auc_score(labels.loc[group["id"]], group["prediction"])
        for key, group in predictions.groupby("cohort")
    }


@pytest.mark.parametrize("attack", ["StackWalker", "ObjectScanner"])
def test_label_hunting_succeeds_in_process_and_fails_in_a_worker(tiny_cohorts, attack):
    """Without isolation the attack reads the predicted cohort's labels (AUC 1.0 on every
    cohort); in a worker it finds none and its constant prediction ranks at chance."""
    exposed = _external_auc(tiny_cohorts, attack, "none")
    assert exposed == {"mdacc": 1.0, "pembro_rt_cv": 1.0}
    isolated = _external_auc(tiny_cohorts, attack, "process")
    assert isolated == {"mdacc": 0.5, "pembro_rt_cv": 0.5}


def test_a_worker_that_dies_fails_the_run_naming_model_and_step(tiny_cohorts):
    with pytest.raises(SubmissionError, match=r"Crashes: its worker process ended during predict"):
        _external_auc(tiny_cohorts, "Crashes", "process")


def test_an_exception_in_a_worker_keeps_its_type_and_says_where(tiny_cohorts):
    with pytest.raises(KeyError, match="a bug in the submission") as info:
        _external_auc(tiny_cohorts, "Raises", "process")
    assert any("worker process" in note for note in info.value.__notes__)


def test_isolated_and_in_process_runs_give_the_same_predictions(tiny_cohorts):
    """A real model (the clinical Cox baseline) predicts the same, to the bit, in a worker."""
    config = {"_target_": "baselines.cox_clinical.ClinicalCox"}
    runs = []
    for sandbox in ("none", "process"):
        predictions, folds = run_protocol(
            isolated_factory("cox_clinical", config, 0, sandbox),
            "cox_clinical",
            ("pembro_rt", tiny_cohorts["pembro_rt"]),
            {"nivorad": tiny_cohorts["nivorad"].cohort, "mdacc": tiny_cohorts["mdacc"].cohort},
            ("os", "pfs"),
            n_splits=5,
            fold_seed=0,
        )
        runs.append(predictions)
    pd.testing.assert_frame_equal(runs[0], runs[1], check_exact=True)


def test_an_unknown_sandbox_is_refused():
    with pytest.raises(ValueError, match="sandbox must be one of"):
        isolated_factory("m", {"_target_": "attacks.Raises"}, 0, "docker")


def test_labels_kept_from_one_fold_do_not_reach_another_folds_predict(tiny_cohorts):
    """In one process, fold 0's fit holds the labels of folds 1-2, which a model can keep and
    replay; a new worker per fit has only its own training labels."""
    exposed = _external_auc(tiny_cohorts, "Hoarder", "none")
    assert exposed["pembro_rt_cv"] > 0.75 and exposed["mdacc"] == 0.5
    assert _external_auc(tiny_cohorts, "Hoarder", "process") == {"mdacc": 0.5, "pembro_rt_cv": 0.5}


@pytest.mark.parametrize(
    ("target", "limits", "message"),
    [
        ("Sleeper", Limits(step_s=1.0), r"Sleeper: predict ran longer than limits.step_s=1 s"),
        ("Hog", Limits(memory_gib=0.5), r"Hog: predict used \d\.\d\d GiB, over limits.memory_gib"),
    ],
)
def test_a_runaway_step_is_stopped_with_the_limit_named(tiny_cohorts, target, limits, message):
    model = isolated_factory(target, {"_target_": f"attacks.{target}"}, 0, "process", limits)()
    dev = tiny_cohorts["pembro_rt"]
    model.fit(dev.cohort, dev.outcomes)
    clock = time.monotonic()
    with pytest.raises(LimitExceeded, match=message):
        model.predict(tiny_cohorts["mdacc"].cohort)
    assert time.monotonic() - clock < 20  # stopped, not waited for
    assert model._process is None  # the worker is gone
