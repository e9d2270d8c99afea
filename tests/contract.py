"""The submission contract as executable rules, for tests/test_contract.py and test_submissions.py.

Each rule has a name; a model that breaks one raises :class:`ContractViolation`, whose message
names the model, the rule and what was seen, e.g.
``my_model: breaks rule 'complete-predictions' on mdacc, task lesion_pd: 2 lesions without a
prediction: MDA-001-L2, MDA-004-L1``.

The blinding rules are checked two ways: a spy (a Python audit hook) records every file the
model opens while it predicts, and the predicted cohort's label files are rewritten, then
removed, between two predictions of the same fitted model, which must not change.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.cohort import (
    LESION_OUTCOME_COLUMNS,
    PATIENT_OUTCOME_COLUMNS,
    TASKS,
    Cohort,
    LabelledCohort,
)
from benchmark.data import layout
from benchmark.submission import Submission, check_predictions

RULES = {
    "declared-tasks": "`tasks` is a non-empty tuple of lesion_pd, os, pfs",
    "complete-predictions": "every lesion (lesion_pd) / patient (os, pfs) of the predicted cohort "
    "gets exactly one prediction, for every declared task, and no other id does",
    "valid-values": "lesion_pd: probabilities in [0, 1]; os/pfs: finite risk scores",
    "blind-predict": "predict gets no outcome columns and opens no label file "
    "(patients.csv, lesions.csv, truth/)",
    "label-independent": "predictions do not change when the predicted cohort's label files are "
    "rewritten or removed",
    "read-only-cohort": "predict does not modify the cohort view it is given",
    "seeded": "two fits with the same seed give the same predictions, and predict is deterministic",
}
LABEL_TABLES = ("patients.csv", "lesions.csv")


class ContractViolation(AssertionError):
    """A model broke a rule of the submission contract."""

    def __init__(self, model: str, rule: str, detail: str) -> None:
        assert rule in RULES, rule
        self.model, self.rule = model, rule
        super().__init__(f"{model}: breaks rule '{rule}' ({RULES[rule]}): {detail}")


# --------------------------------------------------------------------------------------------
# The spy


@dataclass
class _Spy:
    active: bool = False
    opened: list[str] = field(default_factory=list)


_SPY = _Spy()
_HOOKED = False


def _hook(event: str, args: tuple) -> None:
    if _SPY.active and event == "open" and args and isinstance(args[0], str | bytes | os.PathLike):
        _SPY.opened.append(os.fsdecode(args[0]))


@contextmanager
def watching_files() -> Iterator[list[str]]:
    """Every path opened from Python inside the block (audit hooks see ``open``, pandas, numpy)."""
    global _HOOKED
    if not _HOOKED:  # an audit hook cannot be removed: install one, switch it on and off
        sys.addaudithook(_hook)
        _HOOKED = True
    outer, seen = _SPY.opened, []
    _SPY.active, _SPY.opened = True, seen
    try:
        yield seen
    finally:
        _SPY.active, _SPY.opened = False, outer
        outer.extend(seen)


def label_files(paths: list[str]) -> list[str]:
    """The label tables (and simulator truth) among ``paths``."""
    return sorted({p for p in paths if Path(p).name in LABEL_TABLES or "truth" in Path(p).parts})


def view_problems(cohort: Cohort) -> list[str]:
    """What a predict view must not carry: outcome columns, or a way up to the label tables."""
    problems = []
    leaked = [c for c in PATIENT_OUTCOME_COLUMNS if c in cohort.patients.columns]
    leaked += [c for c in LESION_OUTCOME_COLUMNS if c in cohort.lesions.columns]
    if leaked:
        problems.append(f"the cohort view holds outcome column(s) {leaked}")
    for path in list(cohort.images.values())[:1] + list(cohort.masks.values())[:1]:
        for parent in Path(path).parents:
            found = [t for t in LABEL_TABLES if (parent / t).exists()]
            if found:
                problems.append(f"{path}: walking up reaches {parent / found[0]}")
                break
    return problems


# --------------------------------------------------------------------------------------------
# Label files of a private copy of the data


def private_copy(root: Path, target: Path) -> Path:
    """A copy of a dataset whose label tables can be changed: images hard-linked, tables copied."""

    def link_or_copy(src: str, dst: str) -> None:
        if Path(src).suffix == ".csv":
            shutil.copy2(src, dst)
            return
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(root, target, copy_function=link_or_copy)
    return target


def rewrite_labels(root: Path, cohort: str) -> None:
    """Shift every patient's outcomes to the next patient, flip every PD label, drop the truth."""
    folder = Path(root) / cohort
    patients = pd.read_csv(folder / "patients.csv", dtype=str, keep_default_na=False)
    columns = list(PATIENT_OUTCOME_COLUMNS)
    patients[columns] = np.roll(patients[columns].to_numpy(), 1, axis=0)
    lesions = pd.read_csv(folder / "lesions.csv", dtype=str, keep_default_na=False)
    lesions["pd"] = (1 - lesions["pd"].astype(int)).astype(str)
    for name, frame in (("patients.csv", patients), ("lesions.csv", lesions)):
        (folder / name).unlink()  # a new file: never write through to a shared original
        (folder / name).write_text(frame.to_csv(index=False))
    shutil.rmtree(folder / "truth", ignore_errors=True)


def remove_labels(root: Path, cohort: str) -> None:
    for name in LABEL_TABLES:
        (Path(root) / cohort / name).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# The rules


def check_declared_tasks(name: str, model: Submission) -> tuple[str, ...]:
    tasks = getattr(type(model), "tasks", None)
    if not isinstance(tasks, tuple) or not tasks or any(t not in TASKS for t in tasks):
        raise ContractViolation(name, "declared-tasks", f"tasks = {tasks!r}")
    return tasks


def _ids(values: list) -> str:
    shown = ", ".join(map(str, values[:5]))
    return shown + (f" (+{len(values) - 5} more)" if len(values) > 5 else "")


def check_prediction_values(
    name: str, cohort: Cohort, predictions: object, tasks: tuple[str, ...]
) -> None:
    """complete-predictions and valid-values, then the harness's own check_predictions."""
    if not isinstance(predictions, Mapping):
        raise ContractViolation(
            name, "complete-predictions", f"predict returned {type(predictions).__name__}"
        )
    for task in tasks:
        where = f"on {cohort.name}, task {task}"
        pred = predictions.get(task)
        if not isinstance(pred, pd.Series):
            raise ContractViolation(
                name,
                "complete-predictions",
                f"{where}: no pandas Series (got {type(pred).__name__})",
            )
        unit = "lesions" if task == "lesion_pd" else "patients"
        expected = cohort.lesion_ids if task == "lesion_pd" else cohort.patient_ids
        index = [str(i) for i in pred.index]
        counts = pd.Series(index).value_counts()
        twice = sorted(counts.index[counts > 1])
        missing = sorted(set(expected) - set(index))
        extra = sorted(set(index) - set(expected))
        if twice:
            detail = f"{where}: {len(twice)} {unit} predicted more than once: {_ids(twice)}"
            raise ContractViolation(name, "complete-predictions", detail)
        if missing:
            detail = f"{where}: {len(missing)} {unit} without a prediction: {_ids(missing)}"
            raise ContractViolation(name, "complete-predictions", detail)
        if extra:
            raise ContractViolation(
                name, "complete-predictions", f"{where}: predictions for unknown ids {_ids(extra)}"
            )
        values = pd.to_numeric(pred, errors="coerce").to_numpy(float)
        bad = [i for i, v in zip(index, values, strict=True) if not np.isfinite(v)]
        if bad:
            raise ContractViolation(name, "valid-values", f"{where}: not finite for {_ids(bad)}")
        if task == "lesion_pd":
            out = [i for i, v in zip(index, values, strict=True) if not 0.0 <= v <= 1.0]
            if out:
                detail = f"{where}: probabilities outside [0, 1] for {_ids(out)}"
                raise ContractViolation(name, "valid-values", detail)
    check_predictions(name, cohort, predictions, tasks)  # the harness's check: must agree


def _same(a: Mapping[str, pd.Series], b: Mapping[str, pd.Series], tasks) -> str | None:
    for task in tasks:
        left = a[task].sort_index()
        right = b[task].sort_index()
        if not left.index.equals(right.index) or not np.array_equal(
            left.to_numpy(float), right.to_numpy(float)
        ):
            diff = np.abs(left.to_numpy(float) - right.reindex(left.index).to_numpy(float))
            return f"task {task}: largest change {np.nanmax(diff):.3g}"
    return None


def _snapshot(cohort: Cohort) -> tuple:
    return (
        cohort.patients.copy(deep=True),
        cohort.lesions.copy(deep=True),
        dict(cohort.images),
        dict(cohort.masks),
    )


def _unchanged(before: tuple, cohort: Cohort) -> bool:
    patients, lesions, images, masks = before
    return (
        patients.equals(cohort.patients)
        and lesions.equals(cohort.lesions)
        and images == dict(cohort.images)
        and masks == dict(cohort.masks)
    )


def predict_watched(name: str, model: Submission, cohort: Cohort) -> object:
    """``model.predict(cohort)`` under the blind-predict and read-only-cohort rules."""
    problems = view_problems(cohort)
    if problems:  # a harness bug, but the rule is the same
        raise ContractViolation(name, "blind-predict", "; ".join(problems))
    before = _snapshot(cohort)
    with watching_files() as opened:
        predictions = model.predict(cohort)
    read = label_files(opened)
    if read:
        raise ContractViolation(name, "blind-predict", f"predict opened {_ids(read)}")
    if not _unchanged(before, cohort):
        raise ContractViolation(name, "read-only-cohort", f"predict changed the {cohort.name} view")
    return predictions


def check_contract(
    name: str,
    make_model: Callable[[int], Submission],
    data_root: Path,
    work_dir: Path,
    cache_dir: Path,
    development: str = "pembro_rt",
    held_out: tuple[str, ...] = ("nivorad", "mdacc"),
    seed: int = 7,
) -> None:
    """Fit on ``development`` and predict ``held_out`` from a private copy of ``data_root``,
    checking every rule; raises :class:`ContractViolation` at the first one broken.

    ``make_model(seed)`` returns a fresh, unfitted model.
    """
    root = private_copy(data_root, Path(work_dir) / "data")
    views = Path(work_dir) / "views"

    def load(cohort: str) -> LabelledCohort:
        return LabelledCohort(*layout.load(root, cohort, view_dir=views, cache_dir=cache_dir))

    dev = load(development)
    cohorts = {c: load(c).cohort for c in held_out}

    model = make_model(seed)
    tasks = check_declared_tasks(name, model)
    model.fit(dev.cohort, dev.outcomes)
    first = {}
    for cohort_name, cohort in cohorts.items():
        first[cohort_name] = predict_watched(name, model, cohort)
        check_prediction_values(name, cohort, first[cohort_name], tasks)

    for cohort_name, cohort in cohorts.items():
        changed = _same(first[cohort_name], model.predict(cohort), tasks)
        if changed:
            detail = f"predict on {cohort_name} twice, same fitted model: {changed}"
            raise ContractViolation(name, "seeded", detail)

    for cohort_name, cohort in cohorts.items():
        rewrite_labels(root, cohort_name)
        changed = _same(first[cohort_name], predict_watched(name, model, cohort), tasks)
        if changed:
            detail = f"on {cohort_name}, after its labels were rewritten: {changed}"
            raise ContractViolation(name, "label-independent", detail)
        remove_labels(root, cohort_name)
        try:
            again = predict_watched(name, model, cohort)
        except (OSError, ValueError) as err:
            detail = f"on {cohort_name}, predict failed once its label files were removed: {err}"
            raise ContractViolation(name, "label-independent", detail) from err
        changed = _same(first[cohort_name], again, tasks)
        if changed:
            detail = f"on {cohort_name}, after its label files were removed: {changed}"
            raise ContractViolation(name, "label-independent", detail)

    twin = make_model(seed)
    twin.fit(dev.cohort, dev.outcomes)
    for cohort_name, cohort in cohorts.items():
        changed = _same(first[cohort_name], twin.predict(cohort), tasks)
        if changed:
            detail = f"seed {seed} twice, on {cohort_name}: {changed}"
            raise ContractViolation(name, "seeded", detail)
