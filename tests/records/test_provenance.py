"""The commit a record carries: -dirty for uncommitted code, not for the leaderboard's own files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from benchmark.records import record_format as results


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / "leaderboard" / "results").mkdir(parents=True)
    (tmp_path / "leaderboard" / "results" / "m__seed0.json").write_text("{}")
    (tmp_path / "model.py").write_text("x = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "init")
    monkeypatch.setattr(results, "PROJECT_ROOT", tmp_path)
    return tmp_path


def test_a_submitted_record_does_not_make_the_checkout_dirty(repo: Path):
    head = _git(repo, "rev-parse", "HEAD")
    assert results.git_commit() == head
    (repo / "leaderboard" / "results" / "m__seed0.json").write_text('{"new": 1}')
    assert results.git_commit() == head


def test_changed_code_makes_it_dirty(repo: Path):
    (repo / "model.py").write_text("x = 2\n")
    assert results.git_commit() == _git(repo, "rev-parse", "HEAD") + "-dirty"


def test_outside_a_checkout_the_commit_is_unknown(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(results, "PROJECT_ROOT", tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert results.git_commit() == "unknown"
