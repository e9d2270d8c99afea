"""Submission folders: their files, configs and model cards; Hydra discovery; and deliberately
broken fake submissions, each of which must fail with a message naming it and the rule."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from contract import ContractViolation, check_contract
from hydra._internal.config_search_path_impl import ConfigSearchPathImpl
from hydra.utils import get_class
from omegaconf import OmegaConf
from tiny_runs import model_config

from benchmark.catalog import by_name, discover, duplicate_names, submission_folders
from benchmark.cohort import Cohort, Outcomes
from benchmark.model_card import card_task_problems, folder_problems, load_model_card
from benchmark.submission import FitContext, Submission
from hydra_plugins.nsclc_io_bench_submissions.submissions_searchpath import (
    SubmissionsSearchPathPlugin,
    submission_conf_dirs,
)

PROJECT = Path(__file__).resolve().parents[1]
SUBMISSIONS = [e for e in discover() if e.kind != "baseline"]
FOLDERS = submission_folders()


def test_there_is_a_template_and_a_contributed_model():
    kinds = {e.kind for e in SUBMISSIONS}
    assert kinds == {"template", "submission"}
    assert not by_name()["template"].on_leaderboard


def test_model_names_are_unique_across_baselines_and_submissions():
    assert duplicate_names(discover()) == {}


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_submission_folder_follows_the_contract(folder: Path):
    entries = [e for e in SUBMISSIONS if e.folder == folder]
    assert folder_problems(folder, entries) == []


@pytest.mark.parametrize("entry", SUBMISSIONS, ids=[e.name for e in SUBMISSIONS])
def test_model_card_tasks_are_the_declared_tasks(entry):
    cfg = OmegaConf.load(entry.config)
    tasks = get_class(cfg.submission._target_).tasks
    card = load_model_card(entry.folder)
    assert card_task_problems(entry.folder, card, tasks) == []


def _write_folder(root: Path, name: str, config: str, card: str | None, files=("README.md",)):
    folder = root / "submissions" / name
    (folder / "conf" / "model").mkdir(parents=True)
    (folder / "conf" / "model" / f"{config}.yaml").write_text(f"name: {config}\n")
    (folder / "__init__.py").write_text("")
    for file in files:
        (folder / file).write_text("# x\n")
    if card is not None:
        (folder / "model_card.yaml").write_text(card)
    return folder


GOOD_CARD = (PROJECT / "submissions" / "_template" / "model_card.yaml").read_text()


def test_broken_folders_are_named_with_the_file_and_the_rule(tmp_path: Path):
    (tmp_path / "conf" / "model").mkdir(parents=True)
    good = _write_folder(tmp_path, "template", "template", GOOD_CARD)
    wrong_config = _write_folder(tmp_path, "lasso", "ridge", GOOD_CARD.replace("template", "lasso"))
    no_card = _write_folder(tmp_path, "nocard", "nocard", None, files=())
    bad_card = _write_folder(
        tmp_path,
        "badcard",
        "badcard",
        GOOD_CARD.replace("name: template", "name: badcard")
        .replace("license: Apache-2.0", "")
        .replace("tasks: [lesion_pd, os, pfs]", "tasks: [response]"),
    )
    entries = discover(tmp_path)
    assert {e.name for e in entries} == {"template", "ridge", "nocard", "badcard"}

    def problems(folder: Path) -> str:
        return "\n".join(folder_problems(folder, [e for e in entries if e.folder == folder]))

    assert problems(good) == ""
    assert "ridge.yaml: a submission's configs are named after its folder" in problems(wrong_config)
    text = problems(no_card)
    assert f"{no_card / 'README.md'}: missing" in text
    assert f"{no_card / 'model_card.yaml'}: missing" in text
    text = problems(bad_card)
    assert "model_card.yaml: at (top level): 'license' is a required property" in text
    assert "model_card.yaml: at tasks.0: 'response' is not one of" in text


def test_two_configs_with_one_name_are_reported(tmp_path: Path):
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "rsf.yaml").write_text("name: rsf\n")
    _write_folder(tmp_path, "rsf", "rsf", GOOD_CARD)
    with pytest.raises(ValueError, match="rsf: .*conf/model/rsf.yaml, .*submissions/rsf"):
        by_name(tmp_path)


# --------------------------------------------------------------------------------------------
# Hydra discovery


def test_the_plugin_adds_every_submission_conf_folder():
    assert submission_conf_dirs() == [f / "conf" for f in FOLDERS]
    ours = ConfigSearchPathImpl()
    ours.append("main", f"file://{PROJECT / 'conf'}")
    SubmissionsSearchPathPlugin().manipulate_search_path(ours)
    added = [e.path for e in ours.get_path() if e.provider == "nsclc-io-bench-submissions"]
    assert added == [f"file://{f / 'conf'}" for f in FOLDERS]
    other = ConfigSearchPathImpl()
    other.append("main", "file:///some/other/app/conf")
    SubmissionsSearchPathPlugin().manipulate_search_path(other)
    assert [e.provider for e in other.get_path()] == ["main"], "other Hydra apps are left alone"


def test_help_lists_the_submissions_in_the_model_group():
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark", "--help"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HYDRA_FULL_ERROR": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("model:"))
    for entry in SUBMISSIONS:
        assert entry.name in line, line


# --------------------------------------------------------------------------------------------
# Deliberately broken fake submissions


class Honest(Submission):
    """Fast, label-free predictions from clinical columns: the base the broken fakes bend."""

    tasks = ("lesion_pd", "os", "pfs")

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()) -> Honest:
        self.mean_age_ = float(cohort.patients["age"].mean())
        return self

    def predict(self, cohort: Cohort) -> dict[str, pd.Series]:
        lesions = cohort.lesions
        p = (
            0.2
            + 0.6 * lesions["irradiated"].astype(float).to_numpy() * 0
            + 0.01 * lesions["mask_label"].to_numpy()
        )
        risk = cohort.patients["age"].fillna(self.mean_age_).to_numpy(float) / 100
        return {
            "lesion_pd": pd.Series(np.clip(p, 0, 1), index=lesions.index),
            "os": pd.Series(risk, index=cohort.patients.index),
            "pfs": pd.Series(-risk, index=cohort.patients.index),
        }


class MissingLesion(Honest):
    def predict(self, cohort):
        out = super().predict(cohort)
        out["lesion_pd"] = out["lesion_pd"].iloc[1:]
        return out


class DuplicatePatient(Honest):
    def predict(self, cohort):
        out = super().predict(cohort)
        out["os"] = pd.concat([out["os"], out["os"].iloc[:1]])
        return out


class ProbabilityAboveOne(Honest):
    def predict(self, cohort):
        out = super().predict(cohort)
        out["lesion_pd"] = out["lesion_pd"] + 1.0
        return out


class NanRisk(Honest):
    def predict(self, cohort):
        out = super().predict(cohort)
        out["pfs"].iloc[0] = np.nan
        return out


class UnknownTask(Honest):
    tasks = ("lesion_pd", "response")


class Unseeded(Honest):
    """Draws its weights from an unseeded generator: two fits differ."""

    def fit(self, cohort, outcomes, context=None):
        self.weight_ = np.random.default_rng().normal()
        return super().fit(cohort, outcomes)

    def predict(self, cohort):
        out = super().predict(cohort)
        out["os"] = out["os"] * self.weight_
        return out


class NoisyPredict(Honest):
    def predict(self, cohort):
        out = super().predict(cohort)
        out["os"] = out["os"] + np.random.default_rng().normal(0, 1, len(out["os"]))
        return out


class MutatesCohort(Honest):
    """Scales a column of the view in place: the next model (or fold) sees other data."""

    def predict(self, cohort):
        cohort.patients["age"] /= 100
        return super().predict(cohort)


class Peeker(Honest):
    """Knows where the data lie and reads the held-out labels (the spy sees the open)."""

    def __init__(self, root: Path, seed: int = 0) -> None:
        super().__init__(seed)
        self.root = root

    def predict(self, cohort):
        out = super().predict(cohort)
        labels = pd.read_csv(self.root / cohort.name / "lesions.csv", index_col="lesion_id")
        out["lesion_pd"] = labels["pd"].astype(float).loc[out["lesion_pd"].index]
        return out


class ShellPeeker(Peeker):
    """Reads the labels through a child process, out of the spy's sight: the predictions still
    follow the labels, which the rewrite-the-labels check sees."""

    def predict(self, cohort):
        out = Honest.predict(self, cohort)
        path = self.root / cohort.name / "lesions.csv"
        text = subprocess.run(["cat", str(path)], capture_output=True, text=True).stdout
        if text:
            labels = pd.read_csv(io.StringIO(text), index_col="lesion_id")
            out["lesion_pd"] = labels["pd"].astype(float).loc[out["lesion_pd"].index] * 0.5 + 0.25
        return out


BROKEN = [
    (MissingLesion, "complete-predictions", "without a prediction"),
    (DuplicatePatient, "complete-predictions", "predicted more than once"),
    (ProbabilityAboveOne, "valid-values", "outside [0, 1]"),
    (NanRisk, "valid-values", "not finite"),
    (UnknownTask, "declared-tasks", "response"),
    (Unseeded, "seeded", "seed 7 twice"),
    (NoisyPredict, "seeded", "twice, same fitted model"),
    (MutatesCohort, "read-only-cohort", "changed the"),
    (Peeker, "blind-predict", "lesions.csv"),
    (ShellPeeker, "label-independent", "after its labels were rewritten"),
]


def test_the_honest_fake_keeps_the_contract(tiny_root: Path, cache_dir: Path, tmp_path: Path):
    check_contract("honest_fake", lambda seed: Honest(seed=seed), tiny_root, tmp_path, cache_dir)


@pytest.mark.parametrize(("cls", "rule", "detail"), BROKEN, ids=[b[0].__name__ for b in BROKEN])
def test_a_broken_submission_fails_naming_itself_and_the_rule(
    cls, rule: str, detail: str, tiny_root: Path, cache_dir: Path, tmp_path: Path
):
    name = f"fake_{cls.__name__.lower()}"

    def make_model(seed: int):
        if issubclass(cls, Peeker):
            return cls(root=tmp_path / "data", seed=seed)
        return cls(seed=seed)

    with pytest.raises(ContractViolation) as caught:
        check_contract(name, make_model, tiny_root, tmp_path, cache_dir)
    message = str(caught.value)
    assert caught.value.rule == rule, message
    assert message.startswith(f"{name}: breaks rule '{rule}'"), message
    assert detail in message, message


def test_a_submission_config_that_writes_outside_its_model_node_is_refused(
    tmp_path: Path, cache_dir: Path
):
    """A model config with ``# @package _global_`` can add to the harness's nodes (an extractor
    this process builds, the protocol): composing it for a test is refused, naming them."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "sneaky.yaml").write_text(
        "# @package _global_\n"
        "model:\n  name: sneaky\n  submission:\n    _target_: fakes.Honest\n"
        "radiomics:\n  hook:\n    _target_: sneaky.model.steal_the_labels\n"
        "protocol:\n  cv:\n    n_splits: 2\n"
    )
    searchpath = f"hydra.searchpath=[file://{tmp_path}]"
    refused = r"sneaky: its config writes outside its model node: \['protocol', 'radiomics'\]"
    with pytest.raises(AssertionError, match=refused):
        model_config("sneaky", cache_dir, searchpath)
    (tmp_path / "model" / "sneaky.yaml").write_text(
        "name: sneaky\nsubmission:\n  _target_: fakes.Honest\n"
    )
    assert model_config("sneaky", cache_dir, searchpath).model.submission._target_ == "fakes.Honest"
