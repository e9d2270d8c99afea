"""Fresh draws on the tiny profile: the aggregate's numbers, private seeds kept out of every
output, the public seed refused, and the board's fresh column and flag."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import pytest
from tiny_runs import tiny_run

from benchmark.leaderboard.__main__ import main
from benchmark.leaderboard.board import Paths, load_board
from benchmark.leaderboard.fresh import SEEDS_ENV, FreshError, resolve_seeds
from benchmark.leaderboard.fresh_aggregate import flagged, seed_digest, upper_bound
from benchmark.leaderboard.store import LeaderboardError
from benchmark.leaderboard.table import FLAG
from benchmark.records.reading import Reference
from benchmark.records.schemas import FRESH_V1, schema_errors

# Long and odd, so that finding one in an output file cannot be a coincidence of digits.
SEEDS = (730541962, 918273645)
MODEL = "cox_clinical"


def _cli(root: Path, *args: str) -> int:
    return main([*args, "--root", str(root), "--data", "tiny"])


def _fresh(root: Path, out: Path, cache_dir: Path, *args: str) -> int:
    return main(
        ["fresh", "--root", str(root), "--data", "tiny", "--out", str(out)]
        + ["--cache-dir", str(cache_dir), "--models", MODEL, *args]
    )


@pytest.fixture(scope="module")
def board(cache_dir, tmp_path_factory) -> Path:
    """A tiny board of cox_clinical and hgb_radiomics_clinical (seed 0 each), no fresh draws."""
    root = tmp_path_factory.mktemp("fresh-board")
    runs = [
        tiny_run(m, 0, cache_dir, tmp_path_factory).out for m in (MODEL, "hgb_radiomics_clinical")
    ]
    assert _cli(root, "submit", "--allow-dirty", *map(str, runs)) == 0  # a modified test tree
    return root


@pytest.fixture(scope="module")
def drawn(board, cache_dir, tmp_path_factory) -> tuple[Path, Path]:
    """(board with cox_clinical's fresh aggregate from SEEDS on the command line, run folders)."""
    out = tmp_path_factory.mktemp("fresh-runs")
    assert _fresh(board, out, cache_dir, "--data-seeds", *map(str, SEEDS)) == 0
    return board, out


def _copy_results(board: Path, tmp_path: Path) -> Path:
    root = tmp_path / "board"
    shutil.copytree(board / "results", root / "results")
    return root


def test_the_aggregate_is_the_mean_sd_and_n_of_the_draws(drawn):
    board, out = drawn
    aggregate = json.loads((board / "fresh" / f"{MODEL}.json").read_text())
    assert schema_errors(aggregate, FRESH_V1) == []
    records = [
        json.loads((out / "tiny" / f"data-seed{s}" / MODEL / "result.json").read_text())
        for s in SEEDS
    ]
    assert [r["provenance"]["config"]["data"]["seed"] for r in records] == list(SEEDS)
    assert {r["seed"] for r in records} == {0}
    assert aggregate["n_draws"] == 2 and aggregate["profile"] == "tiny"
    assert aggregate["seeds"] == sorted(SEEDS) and aggregate["seed_source"] == "command line"
    assert aggregate["seed_digest"] == seed_digest(SEEDS) != seed_digest([SEEDS[0], 1])
    checked = 0
    for cohort, tasks in records[0]["metrics"].items():
        for task, metrics in tasks.items():
            for name in metrics:
                values = [
                    r["metrics"][cohort][task][name]["value"]
                    for r in records
                    if r["metrics"][cohort][task][name]["value"] is not None
                ]
                got = aggregate["metrics"][cohort][task][name]
                assert got["n"] == len(values)
                if len(values) == 2:
                    assert got["mean"] == pytest.approx(statistics.fmean(values), abs=1e-12)
                    assert got["sd"] == pytest.approx(statistics.stdev(values), abs=1e-12)
                    assert got["sd"] > 0  # two draws, two datasets
                    checked += 1
    assert checked >= 6  # Harrell's C of os and pfs on all three cohorts at least


def test_private_seeds_are_written_nowhere(drawn, cache_dir, tmp_path, monkeypatch, capsys):
    board, _ = drawn
    root, out = _copy_results(board, tmp_path), tmp_path / "runs"
    monkeypatch.setenv(SEEDS_ENV, ",".join(map(str, SEEDS)))
    capsys.readouterr()
    assert _fresh(root, out, cache_dir) == 0
    assert _cli(root, "--no-figures") == 0
    printed = capsys.readouterr()
    assert printed.out.count(": ran in") == 2 and "private" in printed.out
    aggregate = json.loads((root / "fresh" / f"{MODEL}.json").read_text())
    assert "seeds" not in aggregate and aggregate["seed_source"] == "environment"
    assert aggregate["seed_digest"] == seed_digest(SEEDS)
    shared = json.loads((board / "fresh" / f"{MODEL}.json").read_text())
    assert aggregate["metrics"] == shared["metrics"]  # same seeds, same draws, same numbers
    files = [p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".gz")]
    assert any(p.name == "README.md" for p in files)
    folders = [str(p.relative_to(out)) for p in out.rglob("*")]
    for seed in SEEDS:
        assert str(seed) not in printed.out + printed.err
        assert not any(str(seed) in name for name in folders)
        for path in files:
            assert str(seed) not in path.read_text(encoding="utf-8"), path

    # an interrupted command resumes: the finished runs are reused
    assert _fresh(root, out, cache_dir) == 0
    assert capsys.readouterr().out.count(": reused in") == 2


def test_the_public_seed_is_refused(board, cache_dir, tmp_path, monkeypatch, capsys):
    public = int(Reference.from_conf("tiny").data["seed"])
    out = tmp_path / "runs"
    assert _fresh(board, out, cache_dir, "--data-seeds", str(SEEDS[0]), str(public)) == 2
    assert "public seed" in capsys.readouterr().err
    monkeypatch.setenv(SEEDS_ENV, f"{SEEDS[0]},{public}")
    assert _fresh(board, out, cache_dir) == 2
    assert not out.exists()  # refused before anything ran
    with pytest.raises(FreshError, match="twice"):
        resolve_seeds([5, 5], public)
    monkeypatch.delenv(SEEDS_ENV)
    with pytest.raises(FreshError, match=SEEDS_ENV):
        resolve_seeds(None, public)
    assert _fresh(board, out, cache_dir, "--data-seeds", "5", "--models", "rf_radiomics") == 2


def test_the_interval_and_the_flag():
    # t(0.975, 2) = 4.3027: a 95% prediction interval of one more draw from 3 draws
    assert upper_bound(0.6, 0.02, 3) == pytest.approx(0.6 + 4.302653 * 0.02 * (4 / 3) ** 0.5)
    metric = {"mean": 0.6, "sd": 0.02, "n": 3}
    assert flagged(0.70, metric) and not flagged(0.699, metric)
    assert not flagged(0.99, {"mean": 0.6, "sd": None, "n": 1})
    assert not flagged(None, metric)


def _row(readme: str, cohort: str, task_title: str, model: str) -> str:
    part = readme.split(f"(`{cohort}`)", 1)[1]
    part = part.split(f"### {task_title}", 1)[1]
    return next(
        line for line in part.splitlines() if line.startswith("| ") and f"| {model} |" in line
    )


def test_the_board_shows_fresh_draws_and_flags_a_planted_public_figure(drawn, tmp_path, capsys):
    board, _ = drawn
    root = _copy_results(board, tmp_path)
    shutil.copytree(board / "fresh", root / "fresh")
    path = root / "fresh" / f"{MODEL}.json"
    aggregate = json.loads(path.read_text())
    public = json.loads((root / "results" / f"{MODEL}__seed0.json").read_text())["metrics"]
    # nivorad OS: fresh draws far below the public figure; mdacc OS: right at it
    planted = public["nivorad"]["os"]["c_index"]["value"]
    aggregate["metrics"]["nivorad"]["os"]["c_index"] = {"mean": planted - 0.3, "sd": 0.01, "n": 2}
    level = public["mdacc"]["os"]["c_index"]["value"]
    aggregate["metrics"]["mdacc"]["os"]["c_index"] = {"mean": level, "sd": 0.01, "n": 2}
    path.write_text(json.dumps(aggregate))

    assert _cli(root, "--no-figures") == 0
    readme = (root / "README.md").read_text()
    flagged_row = _row(readme, "nivorad", "Overall survival", MODEL)
    assert f"{planted - 0.3:.3f} ± 0.010 (2) {FLAG}" in flagged_row
    assert FLAG not in _row(readme, "mdacc", "Overall survival", MODEL)
    assert f"{level:.3f} ± 0.010 (2)" in _row(readme, "mdacc", "Overall survival", MODEL)
    # a model without fresh draws shows a dash in the fresh column
    hgb = _row(readme, "nivorad", "Per-lesion progressive disease", "hgb_radiomics_clinical")
    assert hgb.split(" | ")[4] == "—"
    assert f"{FLAG}**: the public figure lies above" in readme
    assert f"[{MODEL}](fresh/{MODEL}.json) | `tiny` | 2 |" in readme
    capsys.readouterr()
    assert _cli(root, "check") == 0


def test_stale_or_foreign_aggregates_are_refused(drawn, tmp_path):
    board, _ = drawn
    reference = Reference.from_conf("tiny")
    good = json.loads((board / "fresh" / f"{MODEL}.json").read_text())
    cases = {
        "profile": ({**good, "profile_key": "0" * 16}, f"{MODEL}.json", "another data profile"),
        "protocol": ({**good, "protocol_key": "0" * 16}, f"{MODEL}.json", "another protocol"),
        "config": ({**good, "model_config": "0" * 16}, f"{MODEL}.json", "another model config"),
        "orphan": ({**good, "model": "rsf"}, "rsf.json", "no record on the board"),
        "misnamed": (good, "cox.json", f"is named {MODEL}.json"),
        "leaky": ({**good, "seed_source": "environment"}, f"{MODEL}.json", "should not be valid"),
    }
    for case, (aggregate, name, reason) in cases.items():
        root = _copy_results(board, tmp_path / case)
        (root / "fresh").mkdir()
        (root / "fresh" / name).write_text(json.dumps(aggregate))
        with pytest.raises(LeaderboardError, match=reason):
            load_board(Paths.under(root), reference)
