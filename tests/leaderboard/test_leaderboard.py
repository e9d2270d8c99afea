"""The leaderboard end to end on tiny-data records in temporary folders, its refusals, seed
aggregation, ranking, throughput tables, and the committed leaderboard/README.md (CI check)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tiny_runs import tiny_run

from benchmark.evaluation.metrics import paired_bootstrap_difference
from benchmark.leaderboard.__main__ import main
from benchmark.leaderboard.board import Paths, load_board
from benchmark.leaderboard.oracle import ORACLE, oracle_bytes, read_oracle
from benchmark.leaderboard.predictions import predictions_path, primary_value, read_predictions
from benchmark.leaderboard.ranking import rank_models, replicates, resample_ci
from benchmark.leaderboard.store import LeaderboardError, load_entries, submit
from benchmark.leaderboard.table import render_readme
from benchmark.records.catalog import by_name
from benchmark.records.reading import (
    RecordError,
    Reference,
    aggregate_seeds,
    pooled_ci,
    record_problems,
)
from benchmark.runner.run_folder import RECORD, STATUS
from benchmark.runner.sweep import collect_jobs, summarize

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(cache_dir, tmp_path_factory) -> dict[str, Path]:
    specs = {
        "cox0": ("cox_clinical", 0),
        "cox1": ("cox_clinical", 1),
        "hgb0": ("hgb_radiomics_clinical", 0),
        "template0": ("template", 0),
    }
    return {k: tiny_run(m, s, cache_dir, tmp_path_factory).out for k, (m, s) in specs.items()}


@pytest.fixture(autouse=True)
def _harness_cache(cache_dir: Path, monkeypatch) -> None:
    """``submit`` re-scores with the harness's own data: the session's tiny cohorts."""
    monkeypatch.setenv("NSCLC_IO_BENCH_CACHE", str(cache_dir))


@pytest.fixture(scope="module")
def tiny_reference() -> Reference:
    return Reference.from_conf("tiny")


@pytest.fixture(scope="module")
def models():
    return by_name()


def _cli(root: Path, *args: str) -> int:
    return main([*args, "--root", str(root), "--data", "tiny"])


def _submit(root: Path, *runs: Path, clean: bool = False) -> int:
    """``submit`` to a scratch board; the test's checkout may be modified, so the commit rule
    (tests/leaderboard/test_submit.py) is left out unless ``clean``."""
    return _cli(root, "submit", *map(str, runs), *(() if clean else ("--allow-dirty",)))


def _board(tmp_path: Path, runs: dict[str, Path], keys=("cox0", "cox1", "hgb0")) -> Path:
    root = tmp_path / "leaderboard"
    assert _submit(root, *(runs[k] for k in keys)) == 0
    return root


def _record(runs: dict[str, Path], key: str) -> dict:
    return json.loads((runs[key] / "result.json").read_text())


# --------------------------------------------------------------------------------------------
# End to end


def test_submit_build_check_end_to_end(runs, tmp_path: Path, capsys):
    root = _board(tmp_path, runs)
    results = sorted(p.name for p in (root / "results").iterdir())
    assert results == [
        "cox_clinical__seed0.json",
        "cox_clinical__seed0.predictions.csv.gz",
        "cox_clinical__seed1.json",
        "cox_clinical__seed1.predictions.csv.gz",
        "hgb_radiomics_clinical__seed0.json",
        "hgb_radiomics_clinical__seed0.predictions.csv.gz",
        "oracle.predictions.csv.gz",
    ]
    # the record is copied byte for byte; the predictions keep their rows
    assert (root / "results" / "cox_clinical__seed0.json").read_text() == (
        runs["cox0"] / "result.json"
    ).read_text()
    stored = read_predictions(root / "results" / "cox_clinical__seed0.predictions.csv.gz")
    pd.testing.assert_frame_equal(stored, read_predictions(runs["cox0"] / "predictions.csv"))

    assert _cli(root) == 0
    readme = (root / "README.md").read_text()
    assert "## MDACC, external validation (`mdacc`)" in readme
    assert "| 1 | hgb_radiomics_clinical |" in readme  # the only lesion_pd model
    assert "*oracle (simulator truth)*" in readme
    assert "| cox_clinical |" in readme and "| 0, 1 |" in readme  # two seeds aggregated
    assert "template" not in readme
    figures = sorted(p.name for p in (root / "figures").iterdir())
    assert figures == ["forest.png", "km_cox_clinical.png", "roc.png"]

    # deterministic: the same records give the same bytes, and check agrees
    assert _cli(root, "--no-figures") == 0
    assert (root / "README.md").read_text() == readme
    capsys.readouterr()
    assert _cli(root, "check") == 0

    (root / "README.md").write_text(readme.replace("hgb_radiomics_clinical", "hgb", 1))
    assert _cli(root, "check") == 1
    out = capsys.readouterr()
    assert "-" in out.out and "out of date" in out.err


def test_submitting_the_same_run_twice_gives_the_same_bytes(runs, tmp_path: Path):
    root = _board(tmp_path, runs, keys=("cox0",))
    files = {p.name: p.read_bytes() for p in (root / "results").iterdir()}
    assert _submit(root, runs["cox0"]) == 0
    assert {p.name: p.read_bytes() for p in (root / "results").iterdir()} == files


@pytest.mark.slow  # ~5 s: builds the board and its figures twice
def test_figures_of_removed_models_are_deleted(runs, tmp_path: Path):
    root = _board(tmp_path, runs)
    assert _cli(root) == 0
    (root / "figures" / "km_gone.png").write_bytes(b"old")
    for path in (root / "results").glob("cox_clinical__*"):
        path.unlink()
    assert _cli(root) == 0
    assert sorted(p.name for p in (root / "figures").iterdir()) == ["forest.png", "roc.png"]


# --------------------------------------------------------------------------------------------
# The oracle's predictions


def test_submit_writes_the_truth_as_the_oracles_predictions(runs, cache_dir, tmp_path, capsys):
    root = _board(tmp_path, runs)
    path = root / "results" / ORACLE
    raw = path.read_bytes()
    assert raw[4:8] == b"\0\0\0\0", "gzip mtime 0: the same truth gives the same bytes"
    fingerprint, frame = read_oracle(path)
    record = _record(runs, "hgb0")
    assert fingerprint == record["provenance"]["data_fingerprint"]
    from benchmark.data.source import open_dataset

    truth = open_dataset(Reference.from_conf("tiny").data, ["nivorad"], cache_dir).truth("nivorad")
    lesions = frame[(frame["cohort"] == "nivorad") & (frame["task"] == "lesion_pd")]
    assert len(lesions) == len(truth.lesion_p_pd)
    np.testing.assert_array_equal(
        lesions["prediction"].to_numpy(), truth.lesion_p_pd.loc[lesions["id"]].to_numpy()
    )
    os_rows = frame[(frame["cohort"] == "nivorad") & (frame["task"] == "os")]
    np.testing.assert_array_equal(
        os_rows["prediction"].to_numpy(), truth.patient_lp.loc[os_rows["id"], "os"].to_numpy()
    )
    # each (cohort, task) scores the records' oracle (hgb: lesion_pd, cox: os and pfs), and the
    # outcome columns are the records'
    survival = _record(runs, "cox0")
    for (cohort, task), group in frame.groupby(["cohort", "task"]):
        metric = "auc" if task == "lesion_pd" else "c_index"
        stated = (record if task == "lesion_pd" else survival)["oracle"][cohort][task][metric]
        assert primary_value(task, group) == pytest.approx(stated["value"], abs=1e-12)
    ours = lesions.set_index("id")["label"]
    theirs = _slice(runs["hgb0"], "nivorad", "lesion_pd").set_index("id")["label"]
    assert ours.loc[theirs.index].tolist() == theirs.tolist()

    board = load_board(Paths.under(root), Reference.from_conf("tiny"))
    assert board.oracle is not None and len(board.oracle_rows("nivorad", "os")) == len(os_rows)
    # written again from scratch by the command: the same bytes; up to date: left alone
    path.unlink()
    assert _cli(root, "oracle") == 0
    assert path.read_bytes() == raw
    capsys.readouterr()
    assert _cli(root, "oracle") == 0
    assert "up to date" in capsys.readouterr().out


def _rewrite_oracle(path: Path, change) -> None:
    fingerprint, frame = read_oracle(path)
    path.write_bytes(oracle_bytes(change(frame.copy()), fingerprint))


def _oracle_refusal(root: Path) -> str:
    with pytest.raises(LeaderboardError) as caught:
        load_board(Paths.under(root), Reference.from_conf("tiny"))
    return str(caught.value)


def test_a_tampered_oracle_is_refused_and_submit_rewrites_it(runs, tmp_path: Path, capsys):
    root = _board(tmp_path, runs)
    path = root / "results" / ORACLE
    honest = path.read_bytes()

    def move_one(frame: pd.DataFrame) -> pd.DataFrame:
        """The least suspicious lesion without PD becomes the most suspicious: the AUC falls."""
        rows = frame[(frame["cohort"] == "mdacc") & (frame["task"] == "lesion_pd")]
        negative = rows[rows["label"] == 0]["prediction"].idxmin()
        frame.loc[negative, "prediction"] = rows["prediction"].max() + 0.01
        return frame

    _rewrite_oracle(path, move_one)
    message = _oracle_refusal(root)
    assert f"{path}: refused:" in message
    assert "mdacc/lesion_pd: its rows give auc=" in message
    assert "the oracle of cox_clinical__seed0.json is" not in message  # cox has no lesion_pd
    assert "the oracle of hgb_radiomics_clinical__seed0.json is" in message
    assert _cli(root, "--no-figures") == 2  # the board is not built from a forged oracle

    path.write_bytes(honest)
    first = read_oracle(path)[1].query("task == 'os'").index[0]

    def relabel(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[first, "event"] = 1 - frame.loc[first, "event"]
        return frame

    _rewrite_oracle(path, relabel)
    row = read_oracle(path)[1].loc[first]
    assert f"{row['cohort']}/os: id {row['id']}, column event" in _oracle_refusal(root)

    fingerprint, frame = read_oracle(path)
    path.write_bytes(oracle_bytes(frame, "sha256:" + "0" * 64))
    assert "its data fingerprint sha256:000" in _oracle_refusal(root)
    # a stale oracle (other data, an edit) is replaced by the next submit
    assert _submit(root, runs["cox0"]) == 0
    assert path.read_bytes() == honest
    load_board(Paths.under(root), Reference.from_conf("tiny"))


def test_a_board_without_the_oracle_file_loads_without_it(runs, tmp_path: Path):
    """A board older than the file: every record is still shown, no oracle curve is drawn."""
    root = _board(tmp_path, runs)
    (root / "results" / ORACLE).unlink()
    board = load_board(Paths.under(root), Reference.from_conf("tiny"))
    assert board.oracle is None and board.oracle_rows("mdacc", "lesion_pd") is None
    assert board.sections and all(s.oracle for s in board.sections)


# --------------------------------------------------------------------------------------------
# Refusals


def test_tiny_records_never_reach_the_default_leaderboard(runs, models, tmp_path: Path):
    with pytest.raises(RecordError) as caught:
        submit(runs["cox0"], tmp_path / "results", Reference.from_conf("default"), models)
    message = str(caught.value)
    assert str(runs["cox0"] / "result.json") in message
    assert "data profile 'tiny' is not the leaderboard's 'default'" in message
    assert not (tmp_path / "results").exists()


def test_the_template_is_refused(runs, models, tiny_reference, tmp_path: Path):
    with pytest.raises(RecordError, match="'template' is the copy-me template"):
        submit(runs["template0"], tmp_path / "results", tiny_reference, models)


def _refusals(root: Path, tiny_reference: Reference, models) -> str:
    with pytest.raises(LeaderboardError) as caught:
        load_entries(root / "results", tiny_reference, models)
    return str(caught.value)


def _edit(path: Path, change) -> None:
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


def test_a_record_of_another_protocol_is_stale(runs, models, tiny_reference, tmp_path: Path):
    root = _board(tmp_path, runs)
    path = root / "results" / "cox_clinical__seed1.json"
    _edit(path, lambda r: r["provenance"]["config"]["protocol"]["bootstrap"].update(n_boot=500))
    message = _refusals(root, tiny_reference, models)
    assert f"{path}: refused" in message
    assert (
        "protocol differs from the leaderboard's (conf/protocol): bootstrap.n_boot: 500 vs 1000"
        in message
    )
    assert "cox_clinical__seed0.json" not in message


def test_a_record_of_other_data_is_stale(runs, models, tiny_reference, tmp_path: Path):
    root = _board(tmp_path, runs)
    path = root / "results" / "hgb_radiomics_clinical__seed0.json"
    other = "sha256:" + "0" * 64
    _edit(path, lambda r: r["provenance"].update(data_fingerprint=other))
    message = _refusals(root, tiny_reference, models)
    assert f"{path}: refused" in message
    assert f"data fingerprint {other} differs from sha256:" in message
    assert "shared by 2 other record(s)" in message


def test_seeds_of_one_model_must_share_its_config(runs, models, tiny_reference, tmp_path):
    root = _board(tmp_path, runs)
    path = root / "results" / "cox_clinical__seed1.json"
    _edit(path, lambda r: r["provenance"]["config"]["model"]["submission"].update(alpha=9.0))
    message = _refusals(root, tiny_reference, models)
    assert "records disagree on the model config of cox_clinical" in message
    assert "every seed of a model must share its config" in message
    assert "hgb_radiomics_clinical__seed0.json" not in message
    # settings the model does not read do not split its seeds
    _edit(path, lambda r: r["provenance"]["config"]["model"]["submission"].update(alpha=0.01))
    _edit(path, lambda r: r["provenance"]["config"]["hardware"]["deep"].update(epochs=99))
    assert len(load_entries(root / "results", tiny_reference, models)) == 3


def test_unknown_schema_version_is_refused(runs, models, tiny_reference, tmp_path: Path):
    root = _board(tmp_path, runs)
    path = root / "results" / "cox_clinical__seed1.json"
    _edit(path, lambda r: r.update(schema="nsclc-io-bench/result/v2"))
    message = _refusals(root, tiny_reference, models)
    assert f"{path}: refused" in message
    assert "unknown schema version 'nsclc-io-bench/result/v2'" in message


def test_missing_or_foreign_predictions_are_refused(runs, models, tiny_reference, tmp_path):
    root = _board(tmp_path, runs)
    results = root / "results"
    predictions_path(results / "cox_clinical__seed1.json").unlink()
    shutil.copy(
        predictions_path(results / "cox_clinical__seed1.json").with_name(
            "cox_clinical__seed0.predictions.csv.gz"
        ),
        results / "scratch.predictions.csv.gz",
    )
    message = _refusals(root, tiny_reference, models)
    assert "cox_clinical__seed1.predictions.csv.gz: predictions file missing" in message
    assert "scratch.predictions.csv.gz: refused:\n  - predictions without a record" in message


def test_predictions_of_another_run_are_refused(runs, models, tiny_reference, tmp_path):
    root = _board(tmp_path, runs)
    results = root / "results"
    other = tmp_path / "other"
    shutil.copytree(runs["cox0"], other)
    # another model's risks under this record's name
    frame = read_predictions(other / "predictions.csv")
    frame["prediction"] = -frame["prediction"]
    frame.to_csv(other / "predictions.csv", index=False)
    with pytest.raises(RecordError, match="the predictions give c_index=.*not this record's"):
        submit(other, results, tiny_reference, models)


def test_misnamed_and_unknown_model_records_are_refused(runs, models, tiny_reference, tmp_path):
    root = _board(tmp_path, runs, keys=("cox0",))
    results = root / "results"
    (results / "cox_clinical__seed0.json").rename(results / "best_model.json")
    message = _refusals(root, tiny_reference, models)
    assert (
        "best_model.json: refused:\n  - the file of this record is named cox_clinical__seed0"
        in message
    )
    unknown = {k: v for k, v in models.items() if k != "cox_clinical"}
    with pytest.raises(RecordError, match="'cox_clinical' is neither a baseline"):
        submit(runs["cox0"], tmp_path / "elsewhere", tiny_reference, unknown)


def test_a_broken_record_names_the_field(runs):
    record = _record(runs, "cox0")
    broken = copy.deepcopy(record)
    del broken["metrics"]["mdacc"]["os"]["c_index"]["n"]
    broken["metrics"]["nivorad"]["pfs"]["c_index"]["ci95"] = [0.9, 0.1]
    broken["metrics"]["pembro_rt_cv"]["os"]["td_auc_6m"] = {"value": None, "n": 3}
    broken["provenance"]["config"]["seed"] = 5
    problems = record_problems(broken)
    assert "at metrics.mdacc.os.c_index: 'n' is a required property" in problems
    assert (
        "at metrics.pembro_rt_cv.os.td_auc_6m: 'not_computable' is a required property" in problems
    )
    broken["metrics"]["mdacc"]["os"]["c_index"]["n"] = 8
    broken["metrics"]["pembro_rt_cv"]["os"]["td_auc_6m"]["not_computable"] = "why"
    problems = record_problems(broken)
    assert "seed 0 differs from its config's seed 5" in problems
    assert "metrics.nivorad.pfs.c_index: ci95 [0.9, 0.1] is reversed" in problems


# --------------------------------------------------------------------------------------------
# Seeds and ranks


def _fake(model: str, seed: int, auc: float | None, data: str = "a", alpha: float = 1.0) -> dict:
    metric: dict = {"value": auc, "n": 10}
    if auc is None:
        metric["not_computable"] = "only one class"
    else:
        metric["ci95"] = [auc - 0.1, auc + 0.1]
    config = {"seed": seed, "model": {"name": model, "alpha": alpha}, "paths": {"cache_dir": "/c"}}
    return {
        "model": model,
        "seed": seed,
        "metrics": {"nivorad": {"lesion_pd": {"auc": metric}}},
        "provenance": {"data_fingerprint": data, "config": config},
    }


def test_aggregate_seeds_mean_sd_and_pooled_ci():
    records = [
        _fake("b", 2, 0.7),
        _fake("b", 0, 0.6),
        _fake("b", 1, None),
        _fake("b", 0, 0.9),  # the same seed again counts once (the first record)
        _fake("a", 0, 0.5),
        _fake("a", 1, 0.55, alpha=2.0),  # another config of a: its own row
        _fake("a", 2, 0.6, data="other"),  # other data: its own row
    ]
    rows = aggregate_seeds(records)
    assert [(r.model, r.seeds) for r in rows] == [
        ("b", (0, 2)),
        ("a", (0,)),
        ("a", (1,)),
        ("a", (2,)),
    ]
    b = rows[0]
    assert b.mean == pytest.approx(0.65) and b.sd == pytest.approx(np.std([0.6, 0.7], ddof=1))
    assert b.ci95 == pytest.approx(pooled_ci([0.6, 0.7], [[0.5, 0.7], [0.6, 0.8]], bounded=True))
    assert b.ci95[0] < 0.5 and b.ci95[1] > 0.8, "pooled: wider than either seed's own CI"
    assert b.not_computable == ("seed 1: only one class",)
    assert rows[1].ci95 == pytest.approx((0.4, 0.6)), "one seed: its own CI"
    assert b.to_dict()["n_seeds"] == 2 and b.to_dict()["seeds"] == "0 2"


def test_the_sweep_summary_shows_the_leaderboards_numbers(runs, tiny_reference, tmp_path: Path):
    """The end-of-sweep summary of some runs has the rows the leaderboard computes from the same
    runs: per section, each model's seeds, mean and sd of the primary metric, and the secondary
    metric's row as it is."""
    keys = ("cox0", "cox1", "hgb0")
    sweep_dir = tmp_path / "sweep"
    for key in keys:
        job = sweep_dir / key
        job.mkdir(parents=True)
        shutil.copy(runs[key] / RECORD, job / RECORD)
        (job / STATUS).write_text(json.dumps({"state": "succeeded", "overrides": [key]}))
    report = summarize(sweep_dir, collect_jobs(sweep_dir))
    rows = {(r.model, r.cohort, r.task, r.metric): r for r in report.rows}
    assert len(rows) == len(report.rows), "the two cox seeds are one configuration"
    board = load_board(Paths.under(_board(tmp_path, runs, keys)), tiny_reference)
    assert board.sections
    for section in board.sections:
        for standing in section.standings:
            row = rows[(standing.model, section.cohort, section.task, section.primary)]
            assert row.seeds == standing.seeds
            assert row.mean == pytest.approx(standing.value)
            assert row.sd == pytest.approx(standing.sd)  # both None with one seed
        assert section.secondary
        for model, secondary in section.secondary.items():
            key = (model, section.cohort, section.task, section.secondary_metric)
            assert rows[key] == secondary
    assert rows[("cox_clinical", "mdacc", "os", "c_index")].seeds == (0, 1)  # sd compared too


def _slice(run: Path, cohort: str, task: str) -> pd.DataFrame:
    frame = read_predictions(run / "predictions.csv")
    rows = frame[(frame["cohort"] == cohort) & (frame["task"] == task)]
    return rows.reset_index(drop=True)


@pytest.mark.parametrize("cohort", ["pembro_rt_cv", "nivorad", "mdacc"])
@pytest.mark.parametrize(
    ("task", "metric", "a", "b"),
    [
        ("lesion_pd", "auc", "hgb0", "template0"),
        ("os", "c_index", "cox0", "template0"),
    ],
)
def test_pooled_ci_and_differences_use_the_records_resamples(runs, cohort, task, metric, a, b):
    """One seed: the pooled CI is the record's CI, the difference is paired_bootstrap_difference."""
    ga, gb = _slice(runs[a], cohort, task), _slice(runs[b], cohort, task)
    gb = gb.set_index("id").loc[ga["id"]].reset_index()
    ra = replicates(task, ga, 1000, 0)
    assert resample_ci(ra.boot, ra.value, ra.jackknife) == pytest.approx(
        tuple(_record(runs, a)["metrics"][cohort][task][metric]["ci95"])
    )
    standings = rank_models(task, {"a": [(0, ga)], "b": [(0, gb)]}, n_boot=1000, seed=0)
    kwargs = (
        {"label": ga["label"], "patient_id": ga["patient_id"]}
        if task == "lesion_pd"
        else {"time": ga["time"], "event": ga["event"], "patient_id": ga["patient_id"]}
    )
    second = standings[1]
    first = ga if standings[0].model == "a" else gb
    other = gb if standings[0].model == "a" else ga
    expected = paired_bootstrap_difference(
        metric, other["prediction"], first["prediction"], n_boot=1000, seed=0, **kwargs
    )
    assert second.diff_to_top == pytest.approx(expected.value)
    assert second.diff_ci95 == pytest.approx(expected.ci95)


def test_ranks_carry_their_uncertainty():
    rng = np.random.default_rng(0)
    n_patients = 60
    patients = np.repeat([f"P{i:03d}" for i in range(n_patients)], 3)
    label = rng.integers(0, 2, len(patients))
    frame = pd.DataFrame(
        {"id": [f"L{i}" for i in range(len(patients))], "patient_id": patients, "label": label}
    )

    def model(signal: float, seed: int) -> pd.DataFrame:
        noise = np.random.default_rng(seed).normal(0, 1, len(frame))
        score = 1 / (1 + np.exp(-(signal * (2 * label - 1) + noise)))
        return frame.assign(prediction=score)

    runs = {
        "strong": [(0, model(2.0, 1))],
        "twin_a": [(0, model(0.5, 2)), (1, model(0.5, 3))],
        "twin_b": [(0, model(0.5, 4))],
    }
    standings = {s.model: s for s in rank_models("lesion_pd", runs, n_boot=400, seed=0)}
    strong = standings["strong"]
    assert strong.rank == 1 and strong.rank_ci95 == (1.0, 1.0) and strong.p_best == 1.0
    twins = standings["twin_a"], standings["twin_b"]
    assert {t.rank for t in twins} == {2, 3}
    assert all(t.rank_ci95 == (2.0, 3.0) for t in twins), "two equal models: rank 2 or 3"
    assert standings["twin_a"].sd is not None and standings["twin_b"].sd is None
    assert strong.diff_to_top is None and twins[0].diff_ci95[1] < 0


# --------------------------------------------------------------------------------------------
# Throughput


def test_throughput_records_render_and_bad_ones_are_refused(runs, tiny_reference, tmp_path):
    root = _board(tmp_path, runs, keys=("cox0",))
    paths = Paths.under(root)
    assert "No throughput records yet" in render_readme(load_board(paths, tiny_reference))
    paths.throughput.mkdir()
    good = {
        "schema": "nsclc-io-bench/throughput/v1",
        "model": "cnn3d",
        "hardware": {"gpu": "NVIDIA H200", "torch": "2.14.1", "cuda": "13.0"},
        "rows": [
            {"precision": "fp32", "batch": 256, "samples_per_s": 3612.4, "status": "ok"},
            {
                "precision": "fp16",
                "batch": 256,
                "samples_per_s": 4011.0,
                "status": "ok",
                "max_abs_diff": 0.0004,
            },
        ],
    }
    (paths.throughput / "cnn3d__h200.json").write_text(json.dumps(good))
    readme = render_readme(load_board(paths, tiny_reference))
    assert "#### cnn3d — gpu NVIDIA H200, cuda 13.0, torch 2.14.1" in readme
    assert "| precision | batch | samples_per_s | max_abs_diff | status |" in readme, readme
    assert "| fp16 | 256 | 4,011 | 0.0004 | ok |" in readme
    (paths.throughput / "broken.json").write_text(json.dumps({**good, "schema": "x/v9"}))
    with pytest.raises(
        LeaderboardError, match=r"broken.json: refused:\n  - unknown schema version"
    ):
        load_board(paths, tiny_reference)


# --------------------------------------------------------------------------------------------
# The committed leaderboard


def test_committed_leaderboard_readme_is_up_to_date():
    """CI: the committed leaderboard/README.md is what its committed records give."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark.leaderboard", "check"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


SCRIPT = PROJECT / "scripts" / "leaderboard_runs.sh"


def test_the_runs_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


@pytest.mark.slow
def test_the_runs_script_end_to_end_on_tiny_data(cache_dir: Path, tmp_path: Path):
    """scripts/leaderboard_runs.sh with DATA=tiny into a temporary board; a second pass resumes."""
    env = {
        **os.environ,
        "NSCLC_IO_BENCH_CACHE": str(cache_dir),
        "PY": sys.executable,
        "DATA": "tiny",
        "BOARD": str(tmp_path / "board"),
        "OUT": str(tmp_path / "runs"),
        "MODELS": "cox_clinical",
        "SEEDS": "0 1",
    }

    def script() -> subprocess.CompletedProcess:
        proc = subprocess.run(
            ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=900
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc

    script()
    results = tmp_path / "board" / "results"
    assert sorted(p.name for p in results.glob("*.json")) == [
        "cox_clinical__seed0.json",
        "cox_clinical__seed1.json",
    ]
    readme = (tmp_path / "board" / "README.md").read_text()
    record = tmp_path / "runs" / "cox_clinical" / "seed0" / "result.json"
    written = record.stat().st_mtime_ns
    script()
    assert record.stat().st_mtime_ns == written, "a finished run is not recomputed"
    assert (tmp_path / "board" / "README.md").read_text() == readme


# --------------------------------------------------------------------------------------------
# The hostile pull request: forged labels and metrics, unverified rows, hostile cards


def test_submit_scores_with_the_harness_labels_not_the_files(
    runs, models, tiny_reference, tmp_path
):
    """(6): ``submit`` scored a run's own ``label`` column, so a forged file could carry any
    figure. Now the harness's labels must be the file's, and the record's metrics what the
    harness's scoring gives its predictions."""
    forged = tmp_path / "labels"  # a survival time moved: no figure the file gives changes
    shutil.copytree(runs["cox0"], forged)
    frame = read_predictions(forged / "predictions.csv")
    first = frame.index[frame["task"] == "os"][0]
    frame.loc[first, "time"] += 1e-6
    frame.to_csv(forged / "predictions.csv", index=False)
    row = frame.loc[first]
    with pytest.raises(
        RecordError,
        match="its outcome columns are not the harness's labels: "
        rf"{row['cohort']}/os id {row['id']}, column time",
    ):
        submit(forged, tmp_path / "results", tiny_reference, models, allow_dirty=True)

    metrics = tmp_path / "metrics"
    shutil.copytree(runs["hgb0"], metrics)
    record = json.loads((metrics / RECORD).read_text())
    auc = record["metrics"]["mdacc"]["lesion_pd"]["auc"]
    auc["ci95"] = [auc["ci95"][0], 1.0]
    (metrics / RECORD).write_text(json.dumps(record))
    with pytest.raises(
        RecordError,
        match=r"its metrics are not what the harness scores from its "
        r"predictions: metrics.mdacc.lesion_pd.auc.ci95\[1\]",
    ):
        submit(metrics, tmp_path / "results", tiny_reference, models, allow_dirty=True)
    assert not (tmp_path / "results").exists()


def test_an_unverified_record_shows_its_figures_without_a_rank(runs, tiny_reference, tmp_path):
    """(6): a record nothing re-ran (a GPU record; marked in unverified.yaml) took rank 1 with
    AUC 1.000. Now it is listed after the ranked rows, with no rank, P(best) or difference."""
    root = _board(tmp_path, runs)
    (root / "unverified.yaml").write_text("hgb_radiomics_clinical__seed0: 'trained on our <GPU>'\n")
    assert _cli(root, "--no-figures") == 0
    readme = (root / "README.md").read_text()
    rows = [
        line for line in readme.splitlines() if line.startswith("| ") and "hgb_radiomics" in line
    ]
    cells = [c.strip() for c in rows[0].split("|")[1:-1]]
    assert cells[0] == "" and cells[2].startswith("**unverified** [^")
    assert cells[6:9] == ["", "", "—"]  # rank interval, P(best), difference to #1
    assert "unverified, so not ranked: trained on our &lt;GPU&gt;" in readme
    ranked = [
        line for line in readme.splitlines() if line.startswith("| 1 | cox_clinical | re-run |")
    ]
    assert ranked
    (root / "unverified.yaml").write_text("nope__seed0: x\n")
    assert _cli(root, "--no-figures") == 2  # a mark must name a record on the board


HOSTILE = "Eve | </td><script>alert(1)</script><img src=x onerror=alert(2)>\n# Owned [x](http://e)"


def test_a_hostile_model_card_renders_as_text(runs, tmp_path, monkeypatch):
    """(9): card fields went into the board's tables unescaped: a ``|`` broke the table, a
    newline and ``#`` made a heading, HTML and links went through."""
    import yaml

    from benchmark.leaderboard import table

    root = _board(tmp_path, runs)
    card = yaml.safe_load((PROJECT / "submissions" / "_template" / "model_card.yaml").read_text())
    card["authors"] = [{"name": HOSTILE}]
    card["license"] = "MIT | <b>x</b>"
    monkeypatch.setattr(table, "load_model_card", lambda folder: card)
    assert _cli(root, "--no-figures") == 0
    readme = (root / "README.md").read_text()
    row = next(
        line for line in readme.splitlines() if line.startswith("| hgb_radiomics_clinical |")
    )
    assert len(row.split(" | ")) == 6  # the models table's 6 cells: no | got through
    assert "<script" not in readme and "<img" not in readme and "<b>" not in readme
    assert "&lt;script&gt;" in row and "\\[x\\](http://e)" in row and "MIT \\|" in row
    assert not any(line.startswith("# Owned") for line in readme.splitlines())


# --------------------------------------------------------------------------------------------
# The rules of a new entry (issue 25): commit, seeds, card, no silent replacement


def _copy_run(runs: dict[str, Path], key: str, where: Path, change=None) -> Path:
    run = where / key
    shutil.copytree(runs[key], run)
    if change is not None:
        _edit(run / RECORD, change)
    return run


def test_a_run_of_uncommitted_code_is_refused_naming_the_fix(runs, tmp_path: Path, capsys):
    """A record whose commit is dirty was accepted; ``--allow-dirty`` is for scratch boards."""
    dirty = _copy_run(
        runs, "cox0", tmp_path, lambda r: r["provenance"].update(git_commit="ab-dirty")
    )
    root = tmp_path / "board"
    capsys.readouterr()
    assert _submit(root, dirty, clean=True) == 2
    err = capsys.readouterr().err
    assert f"{dirty / RECORD}: refused" in err
    assert "provenance.git_commit ab-dirty: the run was made from uncommitted changes" in err
    assert "commit the model's files, re-run it from that commit" in err
    assert not (root / "results" / "cox_clinical__seed0.json").exists()
    assert main(["submit", str(dirty), "--allow-dirty"]) == 2  # never for leaderboard/
    assert "--allow-dirty is for a scratch board" in capsys.readouterr().err


def test_a_seed_the_board_does_not_declare_is_refused_and_missing_seeds_unrank(
    runs, tmp_path: Path, capsys
):
    """One seed was accepted and ranked. Now a board declares its seeds (board.yaml): another
    seed is refused, and a model without all of them is shown, incomplete, without a rank."""
    root = tmp_path / "leaderboard"
    root.mkdir()
    (root / "board.yaml").write_text("seeds: [0]\n")
    capsys.readouterr()
    assert _submit(root, runs["cox1"]) == 2
    err = capsys.readouterr().err
    assert "seed 1 is not one of the board's seeds 0 (its board.yaml)" in err

    (root / "board.yaml").write_text("seeds: [0, 1]\n")
    assert _submit(root, runs["cox0"], runs["cox1"], runs["hgb0"]) == 0
    out = capsys.readouterr().out
    assert "hgb_radiomics_clinical: seed(s) 1 still missing" in out
    assert "cox_clinical: seed" not in out
    assert _cli(root, "--no-figures") == 0
    readme = (root / "README.md").read_text()
    rows = [line for line in readme.splitlines() if "| hgb_radiomics_clinical |" in line]
    rows = [line for line in rows if line.count("|") > 8]  # the sections' rows, one per cohort
    assert len(rows) == 3
    assert all(row.startswith("|  | hgb_radiomics_clinical | **incomplete** [^") for row in rows)
    assert "incomplete, so not ranked: seeds 0 of the board's 0, 1; submit seed(s) 1" in readme
    assert "| 1 | cox_clinical | re-run |" in readme  # both seeds: ranked


def test_a_submission_without_a_license_is_refused_naming_the_card(
    runs, models, tiny_reference, tmp_path: Path
):
    """A card missing ``license`` was accepted and built an empty cell."""
    entry = models["hgb_radiomics_clinical"]
    folder = tmp_path / "submissions" / entry.folder.name
    shutil.copytree(entry.folder, folder)
    card = folder / "model_card.yaml"
    card.write_text(
        "\n".join(x for x in card.read_text().splitlines() if not x.startswith("license:"))
    )
    copied = replace(entry, folder=folder, config=folder / entry.config.relative_to(entry.folder))
    with pytest.raises(RecordError) as caught:
        submit(
            runs["hgb0"],
            tmp_path / "results",
            tiny_reference,
            {**models, entry.name: copied},
            allow_dirty=True,
        )
    assert f"{card}: at (top level): 'license' is a required property; fix the model card" in str(
        caught.value
    )
    assert not (tmp_path / "results").exists()


def test_a_different_record_replaces_one_on_the_board_only_with_replace(
    runs, tmp_path: Path, capsys
):
    root = _board(tmp_path, runs, keys=("cox0",))
    target = root / "results" / "cox_clinical__seed0.json"
    before = target.read_text()
    again = _copy_run(
        runs, "cox0", tmp_path, lambda r: r["provenance"].update(started_at="2030-01-01T00:00:00")
    )
    capsys.readouterr()
    assert _submit(root, again) == 2
    err = capsys.readouterr().err
    assert f"{target} is already on the board and differs (new vs on the board)" in err
    assert 'provenance.started_at: "2030-01-01T00:00:00" vs' in err
    assert "pass --replace to replace it" in err
    assert target.read_text() == before
    assert _cli(root, "submit", str(again), "--allow-dirty", "--replace") == 0
    assert json.loads(target.read_text())["provenance"]["started_at"] == "2030-01-01T00:00:00"
