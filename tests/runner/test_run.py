"""End to end: `python -m benchmark` on the tiny cohorts, its outputs, and its failure modes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from tiny_runs import bench, model_config

from benchmark.records.record_format import SCHEMA
from benchmark.runner.run import run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, cache_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("run-seed0")
    proc = bench("model=rf_radiomics", "data=tiny", f"hydra.run.dir={out}", cache_dir=cache_dir)
    assert "value [95% CI]" in proc.stdout, proc.stdout
    return out


def test_run_writes_a_complete_record(tiny_run: Path):
    record = json.loads((tiny_run / "result.json").read_text())
    assert record["schema"] == SCHEMA
    assert record["model"] == "rf_radiomics" and record["seed"] == 0
    assert set(record["metrics"]) == {"pembro_rt_cv", "nivorad", "mdacc"}
    auc = record["metrics"]["pembro_rt_cv"]["lesion_pd"]["auc"]
    assert auc["n"] > 0 and auc["n_pos"] > 0
    assert auc["value"] is not None, auc.get("not_computable")  # both classes on the tiny data
    assert auc["ci95"][0] <= auc["value"] <= auc["ci95"][1]
    oracle = record["oracle"]["mdacc"]["lesion_pd"]["auc"]
    assert 0.5 < oracle["value"] <= 1.0
    prov = record["provenance"]
    assert prov["data_fingerprint"].startswith("sha256:")
    assert prov["config"]["model"]["name"] == "rf_radiomics"
    assert prov["packages"]["scikit-learn"] and prov["hardware"]["cpu_count"]
    assert prov["git_commit"] and prov["duration_s"] > 0


def test_predictions_csv_can_be_rescored(tiny_run: Path):
    from sklearn.metrics import roc_auc_score

    preds = pd.read_csv(tiny_run / "predictions.csv")
    assert list(preds.columns[:5]) == ["cohort", "task", "id", "patient_id", "prediction"]
    assert {"label", "time", "event"} <= set(preds.columns)
    assert not preds.duplicated(["cohort", "task", "id"]).any()
    record = json.loads((tiny_run / "result.json").read_text())
    lesions = preds[preds.task == "lesion_pd"]
    assert set(lesions["cohort"]) == set(record["metrics"])  # every cohort is rescored
    for key, group in lesions.groupby("cohort"):
        auc = record["metrics"][key]["lesion_pd"]["auc"]
        assert auc["value"] is not None, f"{key}: {auc.get('not_computable')}"
        assert roc_auc_score(group["label"], group["prediction"]) == pytest.approx(auc["value"])


@pytest.mark.slow  # ~60 s; test_verify re-runs a record in a fresh process by default
def test_same_seed_same_numbers_other_seed_other_forest(tiny_run: Path, tmp_path: Path, cache_dir):
    again, other = tmp_path / "again", tmp_path / "other"
    bench("model=rf_radiomics", "data=tiny", f"hydra.run.dir={again}", cache_dir=cache_dir)
    bench(
        "model=rf_radiomics", "data=tiny", "seed=1", f"hydra.run.dir={other}", cache_dir=cache_dir
    )
    first = json.loads((tiny_run / "result.json").read_text())
    assert json.loads((again / "result.json").read_text())["metrics"] == first["metrics"]
    pd.testing.assert_frame_equal(
        pd.read_csv(tiny_run / "predictions.csv"), pd.read_csv(again / "predictions.csv")
    )
    assert not pd.read_csv(other / "predictions.csv").equals(
        pd.read_csv(tiny_run / "predictions.csv")
    )


def test_a_failed_run_names_the_problem_and_leaves_no_record(tmp_path: Path, cache_dir: Path):
    root = tmp_path / "broken"
    (root / "pembro_rt").mkdir(parents=True)
    (root / "pembro_rt" / "patients.csv").write_text("patient_id,arm\nP1,io\n")
    out = tmp_path / "run"
    proc = bench(
        "data=folder", f"data.root={root}", f"hydra.run.dir={out}", cache_dir=cache_dir, check=False
    )
    assert proc.returncode != 0
    assert "pembro_rt/patients.csv" in proc.stderr + proc.stdout
    assert not (out / "result.json").exists() and not (out / "predictions.csv").exists()


def test_help_and_cfg_job_work(cache_dir: Path):
    help_text = bench("--help", cache_dir=cache_dir).stdout
    assert "data: clinical, default, folder, realistic, tiny" in help_text
    assert "rf_radiomics" in next(
        line for line in help_text.splitlines() if line.startswith("model:")
    )
    cfg = bench("--cfg", "job", "data=tiny", "seed=3", cache_dir=cache_dir).stdout
    assert "seed: 3" in cfg and "name: tiny" in cfg


def test_external_outcomes_are_read_only_after_their_predictions(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The harness holds no external cohort's labels while anything predicts it."""
    from benchmark.data.source import Dataset
    from benchmark.evaluation import protocol

    events: list[tuple[str, str]] = []
    load, check = Dataset.load, protocol.check_predictions

    def spied_load(self, names):
        names = list(names)
        events.extend(("labels", name) for name in names)
        return load(self, names)

    def spied_check(model_name, cohort, predictions, tasks):
        events.append(("predicted", cohort.name))
        return check(model_name, cohort, predictions, tasks)

    monkeypatch.setattr(Dataset, "load", spied_load)
    monkeypatch.setattr(protocol, "check_predictions", spied_check)
    run(model_config("cox_clinical", cache_dir), tmp_path)
    for name in ("nivorad", "mdacc"):
        assert events.index(("labels", name)) > events.index(("predicted", name)), events
    assert events[0] == ("labels", "pembro_rt")  # the development cohort trains the fits
