"""Score pooled predictions against the outcomes, and the simulator's truth for the oracle row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from benchmark.api.cohort import LabelledCohort, Truth
from benchmark.evaluation.metrics import Metric, lesion_pd_metrics, survival_metrics


def attach_outcomes(
    predictions: pd.DataFrame, cohorts: Mapping[str, LabelledCohort]
) -> pd.DataFrame:
    """Add ``label`` (lesion_pd) or ``time``/``event`` (os, pfs) so anyone can re-score a run."""
    out = predictions.copy()
    out["label"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["time"] = np.nan
    out["event"] = pd.array([pd.NA] * len(out), dtype="Int64")
    for key, labelled in cohorts.items():
        rows = out["cohort"] == key
        lesion = rows & (out["task"] == "lesion_pd")
        out.loc[lesion, "label"] = labelled.outcomes.lesion_pd.loc[out.loc[lesion, "id"]].to_numpy()
        for task in ("os", "pfs"):
            sel = rows & (out["task"] == task)
            frame = getattr(labelled.outcomes, task).loc[out.loc[sel, "id"]]
            out.loc[sel, "time"] = frame["time"].to_numpy()
            out.loc[sel, "event"] = frame["event"].to_numpy().astype(int)
    return out


def _in_scope(labelled: LabelledCohort, lesion_ids: pd.Series, scope: str) -> np.ndarray:
    if scope == "all":
        return np.ones(len(lesion_ids), dtype=bool)
    if scope == "out_of_field":
        return labelled.cohort.lesions.loc[lesion_ids, "irradiated"].to_numpy() == 0
    raise ValueError(f"protocol.lesion_scope must be 'all' or 'out_of_field', got {scope!r}")


def _score_task(
    task: str,
    ids: pd.Series,
    prediction: np.ndarray,
    labelled: LabelledCohort,
    development: LabelledCohort,
    protocol: Mapping[str, Any],
) -> dict[str, Metric]:
    boot = protocol["bootstrap"]
    if task == "lesion_pd":
        keep = _in_scope(labelled, ids, protocol["lesion_scope"])
        ids = ids[keep]
        return lesion_pd_metrics(
            labelled.outcomes.lesion_pd.loc[ids].to_numpy(),
            prediction[keep],
            labelled.cohort.lesions.loc[ids, "patient_id"].to_numpy(),
            n_boot=boot["n_boot"],
            seed=boot["seed"],
        )
    frame = getattr(labelled.outcomes, task).loc[ids]
    train = getattr(development.outcomes, task)
    return survival_metrics(
        frame["time"].to_numpy(float),
        frame["event"].to_numpy(bool),
        prediction,
        train_time=train["time"].to_numpy(float),
        train_event=train["event"].to_numpy(bool),
        tau=protocol["survival"]["tau"],
        horizons=tuple(protocol["survival"]["horizons"]),
        n_boot=boot["n_boot"],
        seed=boot["seed"],
        patient_id=ids.to_numpy(),  # resamples follow ids, not row order: pairable across runs
    )


def score(
    predictions: pd.DataFrame,
    cohorts: Mapping[str, LabelledCohort],
    development: LabelledCohort,
    protocol: Mapping[str, Any],
) -> dict[str, dict[str, dict[str, Metric]]]:
    """metrics[cohort_key][task][metric] for every (cohort, task) present in ``predictions``."""
    metrics: dict[str, dict[str, dict[str, Metric]]] = {}
    for (key, task), group in predictions.groupby(["cohort", "task"], sort=False):
        metrics.setdefault(key, {})[task] = _score_task(
            task,
            group["id"].reset_index(drop=True),
            group["prediction"].to_numpy(float),
            cohorts[key],
            development,
            protocol,
        )
    return metrics


def score_oracle(
    tasks: tuple[str, ...],
    cohorts: Mapping[str, LabelledCohort],
    truths: Mapping[str, Truth | None],
    development: LabelledCohort,
    protocol: Mapping[str, Any],
) -> dict[str, dict[str, dict[str, Metric]]]:
    """The same metrics for the simulator's true p(PD) and linear predictors: the best reachable."""
    oracle: dict[str, dict[str, dict[str, Metric]]] = {}
    for key, labelled in cohorts.items():
        truth = truths.get(key)
        if truth is None:
            continue
        for task in tasks:
            if task == "lesion_pd":
                ids = pd.Series(labelled.cohort.lesion_ids)
                values = truth.lesion_p_pd.loc[ids].to_numpy(float)
            else:
                ids = pd.Series(labelled.cohort.patient_ids)
                values = truth.patient_lp.loc[ids, task].to_numpy(float)
            oracle.setdefault(key, {})[task] = _score_task(
                task, ids, values, labelled, development, protocol
            )
    return oracle


def as_dicts(metrics: Mapping[str, Mapping[str, Mapping[str, Metric]]]) -> dict[str, Any]:
    return {
        key: {task: {name: m.to_dict() for name, m in per.items()} for task, per in tasks.items()}
        for key, tasks in metrics.items()
    }
