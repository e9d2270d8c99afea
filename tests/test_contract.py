"""The submission contract, run on every baseline and every submission (template included).

Models are discovered, not listed: ``conf/model/*.yaml`` and ``submissions/*/conf/model/*.yaml``
(benchmark.catalog, the same glob the Hydra plugin uses). Each runs through the harness on the
tiny cohorts, then through the rules of tests/contract.py, always in the bubblewrap sandbox: CI
runs a pull request's submissions here, and no line of them may run in the pytest process
(tests/conftest.py fails any test that imports one). Deep models train a network per fold
(minutes even on tiny): those run with ``-m slow``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from contract import check_contract
from tiny_runs import declared, model_config, tiny_run

from benchmark.catalog import discover
from benchmark.cohort import TASKS, LabelledCohort
from benchmark.leaderboard.predictions import read_predictions
from benchmark.protocol import folds_digest, patient_folds
from benchmark.records import record_problems
from benchmark.run_folder import ARTEFACTS

ENTRIES = discover()
MODELS = [
    pytest.param(e.name, marks=pytest.mark.slow, id=e.name)
    if e.deep
    else pytest.param(e.name, id=e.name)
    for e in ENTRIES
]


@pytest.mark.parametrize("name", MODELS)
def test_runs_through_the_harness_and_writes_a_valid_record(name, cache_dir, tmp_path_factory):
    result = tiny_run(name, 0, cache_dir, tmp_path_factory)
    record = result.record
    assert record_problems(record) == [], f"{name}: its record breaks the result schema"
    found = declared(name, cache_dir)
    tasks = found.tasks
    assert tasks and set(tasks) <= set(TASKS), f"{name}: declared tasks {tasks}"
    assert found.tasks_type == "tuple", f"{name}: rule 'declared-tasks': a {found.tasks_type}"
    for key in ("pembro_rt_cv", "nivorad", "mdacc"):
        assert set(record["metrics"][key]) == set(tasks), f"{name}: {key} misses a declared task"
        for metrics in record["metrics"][key].values():
            for metric in metrics.values():
                assert metric["value"] is not None or metric["not_computable"]


@pytest.mark.parametrize("name", MODELS)
def test_predict_runs_in_the_sandbox_once_per_fold_and_cohort(
    name, cache_dir, tiny_cohorts: dict[str, LabelledCohort], tmp_path_factory
):
    """The run's models ran in the bubblewrap sandbox, where no label table is mounted; every
    fold's held-out patients were predicted by that fold's fit, and each external cohort by the
    final one (one fit per fold and a final fit, read from the artefact folders)."""
    result = tiny_run(name, 0, cache_dir, tmp_path_factory)
    config = result.record["provenance"]["config"]
    assert config["sandbox"] == "bwrap", f"{name}: rule 'blind-predict': ran in {config['sandbox']}"
    protocol = config["protocol"]
    n_splits, external = protocol["cv"]["n_splits"], list(protocol["external"])
    fits = sorted(p.name for p in (result.out / ARTEFACTS).iterdir() if p.is_dir())
    assert fits == sorted([*(f"fold{k}" for k in range(n_splits)), "final"]), fits

    dev = tiny_cohorts[protocol["development"]]
    folds = patient_folds(dev.cohort, dev.outcomes, n_splits, protocol["cv"]["fold_seed"])
    assert folds_digest(folds) == result.record["provenance"]["folds"], "the run's folds"
    preds = read_predictions(result.out / "predictions.csv")
    cv = preds[preds["cohort"] == protocol["development"] + "_cv"]
    lesions = dev.cohort.lesions
    for task, rows in cv.groupby("task"):
        fold_of_row = rows["patient_id"].map(folds)
        for fold in range(n_splits):
            patients = folds.index[folds == fold]
            expected = lesions.index[lesions["patient_id"].isin(patients)]
            expected = expected if task == "lesion_pd" else patients
            predicted = rows.loc[fold_of_row == fold, "id"]
            assert sorted(predicted) == sorted(expected), f"{name}: {task}, fold {fold}"
    assert set(preds["cohort"]) == {protocol["development"] + "_cv", *external}


@pytest.mark.parametrize("name", MODELS)
def test_every_id_is_predicted_exactly_once_with_valid_values(name, cache_dir, tmp_path_factory):
    result = tiny_run(name, 0, cache_dir, tmp_path_factory)
    preds = read_predictions(result.out / "predictions.csv")
    assert not preds.duplicated(["cohort", "task", "id"]).any()
    for (key, task), group in preds.groupby(["cohort", "task"]):
        metric = result.record["metrics"][key][task]["auc" if task == "lesion_pd" else "c_index"]
        assert len(group) == metric["n"], f"{name}: {key}/{task} has {len(group)} rows"
        values = group["prediction"].astype(float)
        assert np.isfinite(values).all(), f"{name}: non-finite predictions on {key}/{task}"
        if task == "lesion_pd":
            assert values.between(0.0, 1.0).all(), f"{name}: probabilities outside [0, 1]"


@pytest.mark.parametrize("name", MODELS)
def test_contract_rules(name: str, tiny_root: Path, cache_dir: Path, tmp_path: Path):
    """Declared tasks, complete and valid predictions, blind and label-independent predict
    (labels rewritten, then removed), read-only cohort files, same seed same output: every
    model instance in the sandbox a run of this model gets."""
    check_contract(name, model_config(name, cache_dir), tiny_root, tmp_path)
