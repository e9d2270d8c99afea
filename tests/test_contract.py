"""The submission contract, run on every baseline and every submission (template included).

Models are discovered, not listed: ``conf/model/*.yaml`` and ``submissions/*/conf/model/*.yaml``
(benchmark.catalog, the same glob the Hydra plugin uses). Each runs through the harness on the
tiny cohorts, then through the rules of tests/contract.py. Deep models train a network per fold
(minutes even on tiny): those run with ``-m slow``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from contract import check_contract
from hydra.utils import instantiate
from tiny_runs import model_config, tiny_run

from benchmark.catalog import discover
from benchmark.cohort import TASKS
from benchmark.leaderboard.predictions import read_predictions
from benchmark.records import record_problems

ENTRIES = discover()
MODELS = [
    pytest.param(e.name, marks=pytest.mark.slow, id=e.name)
    if e.deep
    else pytest.param(e.name, id=e.name)
    for e in ENTRIES
]


def _tasks(name: str, cache_dir: Path) -> tuple[str, ...]:
    return tuple(type(instantiate(model_config(name, cache_dir).model.submission)).tasks)


@pytest.mark.parametrize("name", MODELS)
def test_runs_through_the_harness_and_writes_a_valid_record(name, cache_dir, tmp_path_factory):
    result = tiny_run(name, 0, cache_dir, tmp_path_factory)
    record = result.record
    assert record_problems(record) == [], f"{name}: its record breaks the result schema"
    tasks = _tasks(name, cache_dir)
    assert tasks and set(tasks) <= set(TASKS), f"{name}: declared tasks {tasks}"
    for key in ("pembro_rt_cv", "nivorad", "mdacc"):
        assert set(record["metrics"][key]) == set(tasks), f"{name}: {key} misses a declared task"
        for metrics in record["metrics"][key].values():
            for metric in metrics.values():
                assert metric["value"] is not None or metric["not_computable"]


@pytest.mark.parametrize("name", MODELS)
def test_predict_is_blind_in_the_harness(name, cache_dir, tmp_path_factory):
    """The spy on every predict call of the protocol: no outcome columns, no label file read."""
    result = tiny_run(name, 0, cache_dir, tmp_path_factory)
    protocol = result.record["provenance"]["config"]["protocol"]
    expected = protocol["cv"]["n_splits"] + len(protocol["external"])
    assert result.predict_calls == expected, f"{name}: one predict per fold and external cohort"
    assert result.view_problems == [], f"{name}: rule 'blind-predict': {result.view_problems}"
    assert result.opened_labels == [], f"{name}: rule 'blind-predict': {result.opened_labels}"


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
    (labels rewritten, then removed), read-only cohort views, same seed same output."""
    cfg = model_config(name, cache_dir)

    def make_model(seed: int):
        return instantiate(cfg.model.submission, seed=seed, _convert_="all")

    check_contract(name, make_model, tiny_root, tmp_path, cache_dir)
