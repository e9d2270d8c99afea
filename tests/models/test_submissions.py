"""Submission folders: their files, configs and model cards; Hydra discovery; and deliberately
broken fake submissions (tests/fakes.py), each of which must fail with a message naming it and
the rule. Whatever runs a submission's code runs it in the sandbox
(benchmark/runner/contract.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra._internal.config_search_path_impl import ConfigSearchPathImpl
from omegaconf import DictConfig, OmegaConf
from tiny_runs import declared, model_config

from benchmark.records.catalog import by_name, discover, duplicate_names, submission_folders
from benchmark.records.model_card import card_task_problems, folder_problems, load_model_card
from benchmark.runner.contract import ContractViolation, check_contract
from hydra_plugins.nsclc_io_bench_submissions.submissions_searchpath import (
    SubmissionsSearchPathPlugin,
    submission_conf_dirs,
)

PROJECT = Path(__file__).resolve().parents[2]
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
def test_model_card_tasks_are_the_declared_tasks(entry, cache_dir: Path):
    """The class's tasks, as its worker in the sandbox declares them (not imported here)."""
    found = declared(entry.name, cache_dir)
    tasks = found.tasks
    assert found.tasks_type == "tuple", f"{entry.name}: rule 'declared-tasks': a {found.tasks_type}"
    card = load_model_card(entry.folder)
    assert card_task_problems(entry.folder, card, tasks) == []
    assert found.network == entry.deep, f"{entry.name}: the card's network: is not network()"


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
    assert "ridge.yaml: config 'ridge' is not named after its folder 'lasso'" in problems(
        wrong_config
    )
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
# Deliberately broken fake submissions (tests/fakes.py), run through the contract in the sandbox


def _fake_config(cache_dir: Path, cls: str, **params: object) -> DictConfig:
    cfg = model_config("cox_clinical", cache_dir)
    cfg.model.submission = OmegaConf.create({"_target_": f"fakes.{cls}", **params})
    return cfg


# (fake, sandbox, rule, detail). In the sandbox a fake that opens a label table or writes into
# its cohort's files fails there; ``process`` (workers without the sandbox) shows that the
# checks behind what the sandbox guarantees still see a model that reads the labels by a way
# nothing fails on, or changes the cohort's files.
BROKEN = [
    ("MissingLesion", "bwrap", "complete-predictions", "without a prediction"),
    ("DuplicatePatient", "bwrap", "complete-predictions", "predicted more than once"),
    ("ProbabilityAboveOne", "bwrap", "valid-values", "outside [0, 1]"),
    ("NanRisk", "bwrap", "valid-values", "not finite"),
    ("UnknownTask", "bwrap", "declared-tasks", "response"),
    ("Unseeded", "bwrap", "seeded", "seed 7 twice"),
    ("NoisyPredict", "bwrap", "seeded", "twice, same fitted model"),
    ("MutatesCohort", "bwrap", "read-only-cohort", "of the cohort, read-only in the sandbox"),
    ("Peeker", "bwrap", "blind-predict", "lesions.csv, a label file"),
    ("MutatesCohort", "process", "read-only-cohort", "predict on nivorad changed"),
    ("Peeker", "process", "label-independent", "after its labels were rewritten"),
    ("ShellPeeker", "process", "label-independent", "after its labels were rewritten"),
]


def test_the_honest_fake_keeps_the_contract(tiny_root: Path, cache_dir: Path, tmp_path: Path):
    check_contract("honest_fake", _fake_config(cache_dir, "Honest"), tiny_root, tmp_path)


@pytest.mark.parametrize(
    ("cls", "sandbox", "rule", "detail"), BROKEN, ids=[f"{b[0]}-{b[1]}" for b in BROKEN]
)
def test_a_broken_submission_fails_naming_itself_and_the_rule(
    cls: str, sandbox: str, rule: str, detail: str, tiny_root: Path, cache_dir: Path, tmp_path
):
    name = f"fake_{cls.lower()}"
    params = {"root": str(tmp_path / "data")} if "Peeker" in cls else {}
    cfg = _fake_config(cache_dir, cls, **params)
    with pytest.raises(ContractViolation) as caught:
        check_contract(name, cfg, tiny_root, tmp_path, sandbox=sandbox)
    message = str(caught.value)
    assert caught.value.rule == rule, message
    assert message.startswith(f"{name}: breaks rule '{rule}'"), message
    assert detail in message, message


def test_a_peeker_that_finds_no_label_in_the_sandbox_keeps_the_contract(
    tiny_root: Path, cache_dir: Path, tmp_path: Path
):
    """ShellPeeker reads the labels where the data lie, by a child process, and carries on
    when it finds none; without the sandbox that breaks 'label-independent' (above); in it the
    data's folder is an empty tmpfs, so its predictions are the honest fake's."""
    cfg = _fake_config(cache_dir, "ShellPeeker", root=str(tmp_path / "data"))
    check_contract("fake_shellpeeker", cfg, tiny_root, tmp_path)


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
