"""The rules ``python -m benchmark.leaderboard submit`` enforces beyond a valid record: a clean
commit holding the model's files as they are, the board's seeds (an incomplete model is shown,
not ranked), a valid model card, no silent replacement; and the model's name written once (the
catalog refuses a config named other than its folder). End-to-end refusals on tiny runs are in
tests/leaderboard/test_leaderboard.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from benchmark.leaderboard.checks import (
    DECLARATION,
    INCOMPLETE,
    RERUN,
    UNVERIFIED,
    Check,
    load_seeds,
    missing_seeds,
    seeds_check,
)
from benchmark.leaderboard.provenance import commit_problems
from benchmark.records.catalog import ModelEntry, by_name, discover, naming_problems
from benchmark.records.record_format import git_commit

PROJECT = Path(__file__).resolve().parents[2]
CARD = (PROJECT / "submissions" / "_template" / "model_card.yaml").read_text()


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


def _submission(root: Path, folder: str = "lasso", config: str | None = None, **yaml) -> Path:
    """A submission folder ``submissions/<folder>/`` with its config and card under ``root``."""
    config = config or folder
    base = root / "submissions" / folder
    (base / "conf" / "model").mkdir(parents=True, exist_ok=True)
    lines = {"name": config, "target": f"submissions.{folder}.model.Lasso", **yaml}
    text = f"submission:\n  _target_: {lines['target']}\n"
    if lines["name"] is not None:
        text = f"name: {lines['name']}\n" + text
    (base / "conf" / "model" / f"{config}.yaml").write_text(text)
    (base / "model.py").write_text("class Lasso: ...\n")
    (base / "__init__.py").write_text("")
    (base / "README.md").write_text("# lasso\n")
    (base / "model_card.yaml").write_text(CARD.replace("name: template\n", ""))
    return base


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one committed submission, ``lasso``."""
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.org")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "ridge.yaml").write_text("name: ridge\n")
    _submission(tmp_path)
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "lasso")
    return tmp_path


def _record(commit: str, target: str = "submissions.lasso.model.Lasso") -> dict:
    return {
        "provenance": {
            "git_commit": commit,
            "config": {"model": {"submission": {"_target_": target}}},
        }
    }


def _entry(root: Path) -> ModelEntry:
    (entry,) = [e for e in discover(root) if e.name == "lasso"]
    return entry


# --------------------------------------------------------------------------------------------
# A clean commit that holds the submission as it is


def test_a_clean_commit_holding_the_folder_passes(repo: Path):
    assert commit_problems(_record(_git(repo, "rev-parse", "HEAD")), _entry(repo), repo) == []


def test_a_dirty_commit_is_refused(repo: Path):
    head = _git(repo, "rev-parse", "HEAD")
    (problem,) = commit_problems(_record(head + "-dirty"), _entry(repo), repo)
    assert f"provenance.git_commit {head}-dirty: the run was made from uncommitted" in problem
    assert "commit the model's files, re-run it" in problem


def test_a_commit_that_is_not_in_the_repository_is_refused(repo: Path):
    (problem,) = commit_problems(_record("0" * 40), _entry(repo), repo)
    assert "is not a commit of this repository" in problem


def test_a_folder_changed_or_added_to_since_the_commit_is_refused(repo: Path):
    head = _git(repo, "rev-parse", "HEAD")
    (repo / "submissions" / "lasso" / "model.py").write_text("class Lasso: 'changed'\n")
    (repo / "submissions" / "lasso" / "extra.py").write_text("")
    problems = "\n".join(commit_problems(_record(head), _entry(repo), repo))
    assert f"submissions/lasso/model.py: differs from commit {head[:12]}" in problems
    assert f"submissions/lasso/extra.py: not in commit {head[:12]} (untracked)" in problems


def test_a_commit_without_the_folder_is_refused(repo: Path):
    before = _git(repo, "rev-parse", "HEAD")
    _submission(repo, "elastic")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "elastic")
    (entry,) = [e for e in discover(repo) if e.name == "elastic"]
    (problem,) = commit_problems(_record(before, "submissions.elastic.model.Lasso"), entry, repo)
    assert problem.startswith(f"submissions/elastic: not in commit {before[:12]}")


def test_a_baseline_commit_must_hold_its_config_and_code(repo: Path):
    (repo / "baselines").mkdir()
    (repo / "baselines" / "ridge.py").write_text("class Ridge: ...\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "ridge")
    head = _git(repo, "rev-parse", "HEAD")
    (entry,) = [e for e in discover(repo) if e.name == "ridge"]
    record = _record(head, "baselines.ridge.Ridge")
    assert commit_problems(record, entry, repo) == []
    (repo / "baselines" / "ridge.py").write_text("class Ridge: 'tuned'\n")
    (problem,) = commit_problems(record, entry, repo)
    assert problem.startswith("baselines/ridge.py: differs from commit")


def test_an_untracked_file_makes_the_checkout_dirty(tmp_path: Path, monkeypatch):
    """The run's own flag: a new submission folder not yet committed is code HEAD lacks."""
    import benchmark.records.record_format as record_format

    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.org")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "README.md").write_text("x\n")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "x")
    monkeypatch.setattr(record_format, "PROJECT_ROOT", tmp_path)
    assert not git_commit().endswith("-dirty")
    (tmp_path / ".gitignore").write_text("outputs/\n")
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "run.log").write_text("")
    (tmp_path / "leaderboard").mkdir()
    (tmp_path / "leaderboard" / "x.json").write_text("{}")
    _git(tmp_path, "add", ".gitignore")
    _git(tmp_path, "commit", "-q", "-m", "ignore")
    assert not git_commit().endswith("-dirty")  # ignored files and leaderboard/ do not count
    (tmp_path / "submissions" / "lasso").mkdir(parents=True)
    (tmp_path / "submissions" / "lasso" / "model.py").write_text("")
    assert git_commit().endswith("-dirty")


# --------------------------------------------------------------------------------------------
# The board's seeds


def test_a_model_without_every_seed_is_incomplete_and_unranked():
    assert missing_seeds([0], (0, 1, 2)) == [1, 2]
    check = seeds_check(Check(RERUN), [0], (0, 1, 2))
    assert check.kind == INCOMPLETE and not check.ranked
    assert check.reason == "seeds 0 of the board's 0, 1, 2; submit seed(s) 1, 2 to rank it"
    assert seeds_check(Check(RERUN), [2, 0, 1], (0, 1, 2)) == Check(RERUN)
    assert seeds_check(Check(RERUN), [0], ()) == Check(RERUN)  # a board that declares none
    unverified = Check(UNVERIFIED, "a GPU record")
    assert seeds_check(unverified, [0], (0, 1, 2)) == unverified  # the stronger reason stays


def test_the_committed_board_declares_seeds_0_1_2(tmp_path: Path):
    assert load_seeds(PROJECT / "leaderboard" / DECLARATION) == ((0, 1, 2), [])
    assert load_seeds(tmp_path / DECLARATION) == ((), [])  # a scratch board: none required
    (tmp_path / DECLARATION).write_text("seeds: [0, one]\n")
    seeds, problems = load_seeds(tmp_path / DECLARATION)
    assert seeds == () and problems == [
        f"{tmp_path / DECLARATION}: seeds must be a list of model seeds, e.g. seeds: [0, 1, 2]"
    ]


# --------------------------------------------------------------------------------------------
# The name, written once


def test_a_folder_named_once_passes_and_the_template_drops_its_mark(tmp_path: Path):
    _submission(tmp_path, "lasso")
    _submission(tmp_path, "lasso", config="lasso_strong")
    _submission(tmp_path, "_template", config="template")
    assert all(naming_problems(e) == [] for e in discover(tmp_path))
    assert set(by_name(tmp_path)) == {"lasso", "lasso_strong", "template"}


@pytest.mark.parametrize(
    ("folder", "config", "fields", "message"),
    [
        ("lasso", "ridge", {}, "config 'ridge' is not named after its folder 'lasso'"),
        ("lasso", None, {"name": "ridge"}, "name 'ridge' differs from the file's 'lasso'"),
        (
            "lasso",
            None,
            {"target": "submissions.ridge.model.Lasso"},
            "_target_ 'submissions.ridge.model.Lasso' is not under its folder's package "
            "'submissions.lasso.'",
        ),
    ],
)
def test_the_catalog_refuses_a_config_named_other_than_its_folder(
    tmp_path: Path, folder, config, fields, message
):
    _submission(tmp_path, folder, config, **fields)
    with pytest.raises(ValueError, match="named other than its folder") as err:
        by_name(tmp_path)
    assert message in str(err.value)
    assert str(tmp_path / "submissions" / folder / "conf" / "model") in str(err.value)


def test_the_committed_submissions_are_named_once():
    assert [p for e in discover() for p in naming_problems(e)] == []
