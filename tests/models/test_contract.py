"""The submission contract, run on every baseline and every submission (template included).

Models are discovered, not listed: ``conf/model/*.yaml`` and ``submissions/*/conf/model/*.yaml``
(benchmark.records.catalog, the same glob the Hydra plugin uses). Each runs through the harness on
the tiny cohorts, then through the rules of benchmark/runner/contract.py (the code ``python -m
benchmark.check`` runs), always in the bubblewrap sandbox: no line of a submission may run in
the pytest process (tests/conftest.py fails any test that imports one). Deep models (declared:
``ModelEntry.deep``) train a network per fold, minutes even on tiny at the quick preset: those
run with ``-m slow``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest
from import_watch import imported_since, mark
from omegaconf import OmegaConf
from tiny_runs import model_config, tiny_run

from benchmark.api.cohort import TASKS, LabelledCohort
from benchmark.evaluation.protocol import folds_digest, patient_folds
from benchmark.leaderboard.predictions import read_predictions
from benchmark.records.catalog import discover
from benchmark.records.reading import record_problems
from benchmark.records.record_format import PROJECT_ROOT
from benchmark.runner.contract import ContractViolation, check_contract
from benchmark.runner.run_folder import ARTEFACTS

ENTRIES = discover()
MODELS = [
    pytest.param(e.name, marks=pytest.mark.slow, id=e.name)
    if e.deep
    else pytest.param(e.name, id=e.name)
    for e in ENTRIES
]


_CONTRACT: dict[str, tuple[str, ...] | ContractViolation] = {}


def contract(name: str, tiny_root: Path, cache_dir: Path, tmp_path_factory) -> tuple[str, ...]:
    """``check_contract`` of ``model=name``, once per session (each check starts a sandbox):
    the tasks the model declares, or the rule it breaks, raised at every call."""
    if name not in _CONTRACT:
        work = tmp_path_factory.mktemp(f"contract-{name}")
        try:
            _CONTRACT[name] = check_contract(name, model_config(name, cache_dir), tiny_root, work)
        except ContractViolation as err:
            _CONTRACT[name] = err
    found = _CONTRACT[name]
    if isinstance(found, ContractViolation):
        raise found
    return found


@pytest.mark.parametrize("name", MODELS)
def test_runs_through_the_harness_and_writes_a_valid_record(
    name, tiny_root, cache_dir, tmp_path_factory
):
    result = tiny_run(name, 0, cache_dir, tmp_path_factory)
    record = result.record
    assert record_problems(record) == [], f"{name}: its record breaks the result schema"
    tasks = contract(name, tiny_root, cache_dir, tmp_path_factory)
    assert tasks and set(tasks) <= set(TASKS), f"{name}: declared tasks {tasks}"
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
def test_contract_rules(name: str, tiny_root: Path, cache_dir: Path, tmp_path_factory):
    """Declared tasks, complete and valid predictions, blind and label-independent predict
    (labels rewritten, then removed), read-only cohort files, same seed same output: every
    model instance in the sandbox a run of this model gets."""
    contract(name, tiny_root, cache_dir, tmp_path_factory)


# --------------------------------------------------------------------------------------------
# The proof: submission code runs in the sandbox, and only there

HOSTILE = '''
"""A hostile submission: on import and on construction it notes where it runs and tries to
write outside its own cache folder."""
import json
import os
from pathlib import Path

from fakes import Honest

OWN = Path({own!r})
OUTSIDE = [Path(p) for p in {outside!r}]
LABELS = [Path(p) for p in {labels!r}]


def mark(when):
    tried = {{}}
    for path in OUTSIDE:
        try:
            path.write_text(when)
            tried[str(path)] = "written"
        except OSError as err:
            tried[str(path)] = err.strerror
    seen = {{
        "when": when,
        "pid": os.getpid(),
        "pid_ns": os.readlink("/proc/self/ns/pid"),
        "mnt_ns": os.readlink("/proc/self/ns/mnt"),
        "outside": tried,
        "labels": [str(p) for p in LABELS if p.exists()],
    }}
    try:
        (OWN / f"{{when}}-{{os.getpid()}}.json").write_text(json.dumps(seen))
    except OSError:
        pass  # read-only: every worker's but the preparing one's


mark("import")


class Hostile(Honest):
    def __init__(self, cache_dir, seed=0):
        super().__init__(seed)
        self.cache_dir = cache_dir
        mark("construct")
'''


def test_submission_code_runs_only_in_the_sandbox(
    tiny_root: Path, cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A submission whose module notes, on import and construction, where it runs and tries
    to write outside its own cache folder, taken through the contract's code path: every note
    comes from the sandbox's namespaces (not this process's), no write outside its own folder
    reached this machine's files, it saw no label table, and its module was never imported here.
    The same module imported here (the control) leaves notes that say so."""
    package = f"hostile_{uuid.uuid4().hex[:12]}"
    code = tmp_path / "code"
    cfg = model_config("cox_clinical", cache_dir)
    own = Path(cfg.paths.submission_cache)  # the model's own folder, which the run creates
    outside = [
        tmp_path / "outside.txt",  # a folder of this test: in the sandbox, its own /tmp
        code / package / "written.txt",  # its own code
        cache_dir / f"{package}.txt",  # the cache that holds the datasets
        tiny_root / "written.txt",  # the data
        PROJECT_ROOT / f"{package}.txt",  # the repository
    ]
    labels = [str(tiny_root / c / "lesions.csv") for c in ("pembro_rt", "mdacc")]
    assert all(Path(p).exists() for p in labels)
    source = HOSTILE.format(own=str(own), outside=[str(p) for p in outside], labels=labels)
    (code / package).mkdir(parents=True)
    (code / package / "__init__.py").write_text("")
    (code / package / "model.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(code))  # where the sandbox finds it, as it finds submissions

    target = f"{package}.model.Hostile"
    cfg.model.submission = OmegaConf.create({"_target_": target, "cache_dir": str(own)})
    before = mark()
    check_contract("hostile", cfg, tiny_root, tmp_path / "contract")
    assert imported_since(before, package) == [] and package not in sys.modules

    notes = [json.loads(p.read_text()) for p in sorted(own.glob("*.json"))]
    assert {n["when"] for n in notes} == {"import", "construct"}, notes
    here = {"pid_ns": os.readlink("/proc/self/ns/pid"), "mnt_ns": os.readlink("/proc/self/ns/mnt")}
    for note in notes:
        assert note["pid"] != os.getpid()
        assert all(note[ns] != ours for ns, ours in here.items()), note
        assert note["labels"] == [], note
        refused = {p: why for p, why in note["outside"].items() if p != str(outside[0])}
        assert "written" not in refused.values(), note["outside"]
    # The test's own folder is under /tmp: the sandbox's /tmp is a tmpfs of its own, so a
    # write there may succeed, but nothing reaches this machine's files.
    assert not any(p.exists() for p in outside)

    # The control: imported in this process, the same module notes this process's namespaces
    # and writes where it may (only into this test's folders here), so the checks above would
    # have failed had it run here.
    for path in own.glob("*.json"):
        path.unlink()
    writable_here = outside[:2]
    control = HOSTILE.format(own=str(own), outside=[str(p) for p in writable_here], labels=labels)
    (code / package / "model.py").write_text(textwrap.dedent(control))
    try:
        importlib.import_module(f"{package}.model")
        assert sorted(imported_since(before, package)) == [package, f"{package}.model"]
        (note,) = [json.loads(p.read_text()) for p in own.glob("import-*.json")]
        assert (note["pid"], note["pid_ns"], note["mnt_ns"]) == (os.getpid(), *here.values())
        assert sorted(note["labels"]) == sorted(labels)
        assert [p.read_text() for p in writable_here] == ["import", "import"]
    finally:
        for module in (f"{package}.model", package):
            sys.modules.pop(module, None)
