"""The fixed protocol: grouped cross-validation on the development cohort, then external validation.

Folds are fixed by the protocol (``protocol.cv.fold_seed``), never by the model seed, so every
submission is scored on the same splits. No patient has lesions on both sides of a split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import replace

import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold
from tqdm.auto import tqdm

from benchmark.api.cohort import Cohort, LabelledCohort, Outcomes
from benchmark.api.submission import (
    FitContext,
    Submission,
    check_declared_tasks,
    check_fit_signature,
    check_predictions,
)
from benchmark.records.record_format import CV_KEY_SUFFIX


def patient_folds(cohort: Cohort, outcomes: Outcomes, n_splits: int, fold_seed: int) -> pd.Series:
    """Fold number per patient (index patient_id), stratified on lesion PD, grouped by patient."""
    lesions = cohort.lesions
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=fold_seed)
    labels = outcomes.lesion_pd.loc[lesions.index].to_numpy()
    fold_of = {}
    for fold, (_, test) in enumerate(splitter.split(lesions, labels, groups=lesions["patient_id"])):
        for patient in lesions["patient_id"].iloc[test].unique():
            fold_of[patient] = fold
    # Patients without lesions (allowed by the layout) still need a fold: round-robin, sorted.
    rest = sorted(set(cohort.patient_ids) - set(fold_of))
    for i, patient in enumerate(rest):
        fold_of[patient] = i % n_splits
    return pd.Series(fold_of, name="fold").loc[cohort.patient_ids]


def folds_digest(folds: pd.Series) -> str:
    """Short hash of a fold assignment, recorded so anyone can check two runs shared folds."""
    text = "\n".join(f"{p},{f}" for p, f in sorted(folds.items()))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _predictions_frame(
    key: str, cohort: Cohort, predictions: Mapping[str, pd.Series]
) -> pd.DataFrame:
    frames = []
    for task, values in predictions.items():
        if task == "lesion_pd":
            patient_id = cohort.lesions.loc[values.index, "patient_id"].to_numpy()
        else:
            patient_id = values.index.to_numpy()
        frames.append(
            pd.DataFrame(
                {
                    "cohort": key,
                    "task": task,
                    "id": values.index.to_numpy(),
                    "patient_id": patient_id,
                    "prediction": values.to_numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def run_protocol(
    make_model: Callable[[], Submission],
    model_name: str,
    development: tuple[str, LabelledCohort],
    external: Mapping[str, Cohort],
    tasks: tuple[str, ...],
    n_splits: int,
    fold_seed: int,
    run_context: FitContext = FitContext(),
) -> tuple[pd.DataFrame, pd.Series]:
    """Run CV on the development cohort and external validation; return predictions and folds.

    ``make_model`` returns a fresh, unfitted submission each time (one per fold, one final);
    ``make_model.preparer``, where it has one, builds the model that first prepares every cohort
    (:meth:`Submission.prepare`, no outcomes), the only one whose caches are writable in a
    sandbox (``benchmark/sandbox/isolation.py``).
    ``external`` are cohort views only: their outcomes are loaded by the caller once their
    predictions are back (``benchmark/runner/run.py``).
    Each fit gets ``run_context`` (seed, device, workers) named for its step (``fold<k>``,
    ``final``); with ``run_context.artefact_dir`` set, its artefacts go to ``<that>/<step>``.
    The predictions frame has columns cohort, task, id, patient_id, prediction, with cohort keys
    ``<development>_cv`` and the external cohort names.
    """

    def fitted(cohort: Cohort, outcomes: Outcomes, step: str) -> Submission:
        root = run_context.artefact_dir
        context = replace(run_context, fit=step, artefact_dir=root and root / step)
        model = make_model()
        model.fit(cohort, outcomes, context)
        if context.artefact_dir is not None:
            context.artefact_dir.mkdir(parents=True, exist_ok=True)
            model.save_artefacts(context.artefact_dir)
        return model

    dev_name, dev = development
    probe = getattr(make_model, "preparer", make_model)()
    check_declared_tasks(model_name, tuple(probe.tasks))
    check_fit_signature(model_name, probe)
    run_tasks = tuple(t for t in tasks if t in probe.tasks)
    if not run_tasks:
        raise ValueError(
            f"{model_name} declares tasks {probe.tasks}, none of the protocol's tasks {tasks}"
        )

    for cohort in (dev.cohort, *external.values()):
        probe.prepare(cohort)
    del probe  # ends its worker (IsolatedSubmission.__del__): no fit runs beside it
    folds = patient_folds(dev.cohort, dev.outcomes, n_splits, fold_seed)
    frames = []
    steps = tqdm(total=n_splits + 1, desc=f"{model_name}: protocol", unit="fit")
    with steps:
        for fold in range(n_splits):
            train = dev.cohort.subset(folds.index[folds != fold])
            test = dev.cohort.subset(folds.index[folds == fold])
            model = fitted(train, dev.outcomes.subset(train), f"fold{fold}")
            preds = check_predictions(model_name, test, model.predict(test), run_tasks)
            frames.append(_predictions_frame(dev_name + CV_KEY_SUFFIX, test, preds))
            steps.update()
        model = fitted(dev.cohort, dev.outcomes, "final")
        for name, cohort in external.items():
            preds = check_predictions(model_name, cohort, model.predict(cohort), run_tasks)
            frames.append(_predictions_frame(name, cohort, preds))
        steps.update()
    return pd.concat(frames, ignore_index=True), folds
