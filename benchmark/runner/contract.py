"""The submission contract as executable rules: ``python -m benchmark.check`` and the tests run it.

Each rule has a name; a model that breaks one raises :class:`ContractViolation`, whose message
names the model, the rule and what was seen, e.g.
``my_model: breaks rule 'complete-predictions' (...): on mdacc, task lesion_pd: 2 lesions without
a prediction: MDA-001-L2, MDA-004-L1``.

The model under test runs where a run puts it: in the bubblewrap sandbox's workers
(``benchmark/sandbox/isolation.py``), never in the pytest process, since CI runs a pull request's
submissions and must not run them outside the sandbox. So the blinding rules are checked on
what the sandbox guarantees and the parent can see: the sandbox holds no label table (a model
that opens one fails, and the message names the rule), the cohort's files keep their status
(inode, size, mtime, ctime), and predictions do not change when the predicted cohort's label
files are rewritten, then removed, between two predictions of the same fitted model.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from benchmark.api.cohort import (
    LESION_OUTCOME_COLUMNS,
    PATIENT_OUTCOME_COLUMNS,
    TASKS,
    Cohort,
    LabelledCohort,
)
from benchmark.api.submission import Submission, check_predictions
from benchmark.data import layout
from benchmark.data.watch import FileWatch
from benchmark.runner.harness_caches import fill
from benchmark.runner.run import sandbox_for
from benchmark.sandbox import bwrap
from benchmark.sandbox.isolation import ModelFactory, isolated_models

RULES = {
    "declared-tasks": "`tasks` is a non-empty tuple of lesion_pd, os, pfs",
    "complete-predictions": "every lesion (lesion_pd) / patient (os, pfs) of the predicted cohort "
    "gets exactly one prediction, for every declared task, and no other id does",
    "valid-values": "lesion_pd: probabilities in [0, 1]; os/pfs: finite risk scores",
    "blind-predict": "predict gets no outcome columns and opens no label file "
    "(patients.csv, lesions.csv, truth/; none is in the sandbox)",
    "label-independent": "predictions do not change when the predicted cohort's label files are "
    "rewritten or removed",
    "read-only-cohort": "the model does not modify the cohort files it is given",
    "seeded": "two fits with the same seed give the same predictions, and predict is deterministic",
}
LABEL_TABLES = ("patients.csv", "lesions.csv")
# A label file named in a worker's error (its message, or the traceback in its notes).
_LABEL_PATH = re.compile(r"[^\s'\"]*(?:patients\.csv|lesions\.csv|/truth/[^\s'\"]*)")
# What a sandbox runs the contract in: ``process`` only to show that a check works where no
# sandbox already enforces its rule; never ``none`` (the model would run in this process).
CONTRACT_SANDBOXES = ("bwrap", "process")

T = TypeVar("T")


class ContractViolation(AssertionError):
    """A model broke a rule of the submission contract."""

    def __init__(self, model: str, rule: str, detail: str) -> None:
        assert rule in RULES, rule
        self.model, self.rule = model, rule
        super().__init__(f"{model}: breaks rule '{rule}' ({RULES[rule]}): {detail}")


# --------------------------------------------------------------------------------------------
# The sandbox


@contextmanager
def sandboxed(
    cfg: DictConfig,
    submission: Mapping[str, Any],
    seed: int,
    sandbox: str = "bwrap",
    hidden: Sequence[Path] = (),
    shown: Sequence[Path] = (),
) -> Iterator[ModelFactory]:
    """Models of ``submission`` (a resolved config node) built as a run of ``cfg`` builds them:
    in workers of a bubblewrap sandbox with the run's mounts (``benchmark.runner.run``), plus
    ``hidden`` folders under an empty tmpfs and ``shown`` ones read-only. Fails, rather than
    fall back to a plain process, where bubblewrap cannot run."""
    if sandbox not in CONTRACT_SANDBOXES:
        raise ValueError(f"the contract runs models in {CONTRACT_SANDBOXES}, not {sandbox!r}")
    mounts = None
    if sandbox == "bwrap":
        if not bwrap.available():
            raise RuntimeError(
                'bubblewrap cannot run here: install the Debian package (README, "Two commands")'
            )
        _, mounts = sandbox_for(cfg, dict(submission))
        mounts = dataclasses.replace(
            mounts,
            hidden=(*mounts.hidden, *(Path(p).resolve() for p in hidden)),
            read_only=(*mounts.read_only, *(Path(p).resolve() for p in shown)),
        )
    with isolated_models(str(cfg.model.name), submission, seed, sandbox, mounts=mounts) as made:
        yield made


# --------------------------------------------------------------------------------------------
# Label files of a private copy of the data


def private_copy(root: Path, target: Path) -> Path:
    """A copy of a dataset whose files a test may change, or a model damage: the shared
    dataset's images are not linked into it (a view's images are hard links to these)."""
    shutil.copytree(root, target)
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
        (folder / name).unlink()
        (folder / name).write_text(frame.to_csv(index=False))
    shutil.rmtree(folder / "truth", ignore_errors=True)


def remove_labels(root: Path, cohort: str) -> None:
    for name in LABEL_TABLES:
        (Path(root) / cohort / name).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# The rules


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


def check_declared_tasks(name: str, model: Submission) -> tuple[str, ...]:
    """The tasks the model's worker declares (an isolated handle asks it)."""
    tasks = getattr(model, "tasks", None)
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


def _violation(name: str, step: str, err: Exception, views: Path) -> ContractViolation | None:
    """The rule a worker's failure breaks, read from its message and traceback (the worker's
    exception comes back as its type, arguments and notes: ``benchmark/sandbox/replies.py``; an
    ``OSError`` comes back wrapped, as if the worker had ended, so its chain is read too)."""
    chain: list[BaseException] = []
    cause: BaseException | None = err
    while cause is not None and cause not in chain:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    text = "\n".join(
        line for e in chain for line in (str(e), *map(str, getattr(e, "__notes__", [])))
    )
    said = f"{type(chain[-1]).__name__}: {chain[-1]}"
    labels = _LABEL_PATH.findall(text)
    if labels:
        path = next((p for p in labels if "/" in p), labels[0])
        detail = f"{step} tried to open {path}, a label file, which the sandbox does not hold"
        return ContractViolation(name, "blind-predict", f"{detail} ({said})")
    written = re.search(re.escape(str(views)) + r"/[^\s'\"]+", text)
    if "Read-only file system" in text and written:
        where = Path(written[0]).relative_to(views)
        detail = f"{step} tried to write into {where} of the cohort, read-only in the sandbox"
        return ContractViolation(name, "read-only-cohort", f"{detail} ({said})")
    return None


def check_contract(
    name: str,
    cfg: DictConfig,
    data_root: Path,
    work_dir: Path,
    *,
    sandbox: str = "bwrap",
    development: str = "pembro_rt",
    held_out: tuple[str, ...] = ("nivorad", "mdacc"),
    seed: int = 7,
) -> tuple[str, ...]:
    """Fit ``cfg.model.submission`` on ``development`` and predict ``held_out`` from a private
    copy of ``data_root`` (in ``work_dir``), its models in ``sandbox`` workers, checking every
    rule; raises :class:`ContractViolation` at the first one broken, else returns the tasks the
    model declares.

    The sandbox is the one a run of ``cfg`` gets, with the private copy hidden as a run's data
    are and its views shown; the harness's shared features are filled here first, and a first
    model prepares the cohorts, as in a run (``benchmark/runner/run.py``,
    ``benchmark/evaluation/protocol.py``).
    """
    work_dir = Path(work_dir)
    root = private_copy(data_root, work_dir / "data")
    views = (work_dir / "views").resolve()
    cache_dir = Path(cfg.paths.cache_dir)

    def load(cohort: str) -> LabelledCohort:
        return LabelledCohort(*layout.load(root, cohort, view_dir=views, cache_dir=cache_dir))

    dev = load(development)
    cohorts = {c: load(c).cohort for c in held_out}
    for cohort in cohorts.values():
        problems = view_problems(cohort)
        if problems:  # a harness bug, but the rule is the same
            raise ContractViolation(name, "blind-predict", "; ".join(problems))
    submission = OmegaConf.to_container(cfg.model.submission, resolve=True)
    assert isinstance(submission, dict)
    harness, _ = sandbox_for(cfg, submission)
    fill(harness, [dev.cohort, *cohorts.values()])
    watch = FileWatch.start([views])

    def step(what: str, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)`` in the model's worker; a failure that breaks a rule, or files of the
        cohort changed afterwards, raise the rule's violation."""
        try:
            value = call(*args)
        except Exception as err:
            violation = _violation(name, what, err, views)
            if violation is None:
                raise
            raise violation from err
        changed = [str(Path(p).relative_to(views)) for p in watch.changed()]
        if changed:
            raise ContractViolation(name, "read-only-cohort", f"{what} changed {_ids(changed)}")
        return value

    def build(make: Callable[[], Submission]) -> Submission:
        try:
            return step("the constructor", make)
        except AttributeError as err:  # the worker asks the model for its tasks first
            if "tasks" in str(err):
                raise ContractViolation(name, "declared-tasks", str(err)) from err
            raise

    with sandboxed(cfg, submission, seed, sandbox, [root], [views]) as make_model:
        preparer = build(make_model.preparer)
        tasks = check_declared_tasks(name, preparer)
        for cohort in (dev.cohort, *cohorts.values()):
            step(f"prepare on {cohort.name}", preparer.prepare, cohort)
        _close(preparer)  # one worker at a time, as in a run

        model = build(make_model)
        step("fit", model.fit, dev.cohort, dev.outcomes)
        first = {}
        for cohort_name, cohort in cohorts.items():
            first[cohort_name] = step(f"predict on {cohort_name}", model.predict, cohort)
            check_prediction_values(name, cohort, first[cohort_name], tasks)

        for cohort_name, cohort in cohorts.items():
            changed = _same(first[cohort_name], step("predict", model.predict, cohort), tasks)
            if changed:
                detail = f"predict on {cohort_name} twice, same fitted model: {changed}"
                raise ContractViolation(name, "seeded", detail)

        for cohort_name, cohort in cohorts.items():
            rewrite_labels(root, cohort_name)
            again = step(f"predict on {cohort_name}", model.predict, cohort)
            changed = _same(first[cohort_name], again, tasks)
            if changed:
                detail = f"on {cohort_name}, after its labels were rewritten: {changed}"
                raise ContractViolation(name, "label-independent", detail)
            remove_labels(root, cohort_name)
            try:
                again = step(f"predict on {cohort_name}", model.predict, cohort)
            except (OSError, ValueError) as err:
                detail = f"on {cohort_name}, predict failed once its labels were removed: {err}"
                raise ContractViolation(name, "label-independent", detail) from err
            changed = _same(first[cohort_name], again, tasks)
            if changed:
                detail = f"on {cohort_name}, after its label files were removed: {changed}"
                raise ContractViolation(name, "label-independent", detail)
        _close(model)

        twin = build(make_model)
        step("fit", twin.fit, dev.cohort, dev.outcomes)
        for cohort_name, cohort in cohorts.items():
            changed = _same(first[cohort_name], step("predict", twin.predict, cohort), tasks)
            if changed:
                detail = f"seed {seed} twice, on {cohort_name}: {changed}"
                raise ContractViolation(name, "seeded", detail)
        _close(twin)
    return tasks


def _close(model: Submission) -> None:
    """End an isolated model's worker now (a handle's ``close``)."""
    close = getattr(model, "close", None)
    if close is not None:
        close()
