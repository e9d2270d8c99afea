"""The per-patient predictions stored beside each leaderboard record.

A record holds metrics, not predictions, so it cannot be compared with another record on the
same patient resamples. ``submit`` therefore stores the run's ``predictions.csv`` (gzip'd) as
``<model>__seed<k>.predictions.csv.gz``; :func:`predictions_problems` checks that the file is
the record's own: complete, finite, and reproducing the record's point estimates.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.evaluation.metrics import lesion_pd_metrics, survival_metrics
from benchmark.records.reading import RecordError

PREDICTIONS_SUFFIX = ".predictions.csv.gz"
COLUMNS = ("cohort", "task", "id", "patient_id", "prediction", "label", "time", "event")
# The metric a task is ranked by (higher = better), and the one shown beside it.
PRIMARY_METRIC = {"lesion_pd": "auc", "os": "c_index", "pfs": "c_index"}
SECONDARY_METRIC = {"lesion_pd": "brier", "os": "c_index_uno", "pfs": "c_index_uno"}
# Stored predictions must give the record's point estimate to this precision.
VALUE_TOLERANCE = 1e-9


def predictions_path(record_path: Path) -> Path:
    """Where the predictions of a board record live: beside it, same stem."""
    record_path = Path(record_path)
    return record_path.with_name(record_path.name.removesuffix(".json") + PREDICTIONS_SUFFIX)


def compress(raw: bytes) -> bytes:
    """gzip with a zero timestamp: the same predictions always give the same bytes."""
    return gzip.compress(raw, mtime=0)


def read_predictions(path: Path) -> pd.DataFrame:
    """A run's ``predictions.csv`` or a board's ``.csv.gz``, rows in file order (the order the
    harness scored them, which defines the bootstrap units); :class:`RecordError` if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise RecordError(path, ["predictions file missing (a record is ranked from them)"])
    try:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
    except (OSError, ValueError, EOFError) as err:
        raise RecordError(path, [f"predictions cannot be read ({err})"]) from None
    return parse_predictions(raw, path)


def parse_predictions(raw: bytes, path: Path) -> pd.DataFrame:
    """The CSV text of a predictions file (``path`` names it in a refusal): ids as text, an
    empty cell missing, every column of :data:`COLUMNS` present."""
    try:
        frame = pd.read_csv(
            io.BytesIO(raw),
            dtype={"cohort": str, "task": str, "id": str, "patient_id": str},
            keep_default_na=False,
            na_values=[""],
        )
    except (ValueError, pd.errors.ParserError) as err:
        raise RecordError(path, [f"predictions cannot be read ({err})"]) from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise RecordError(path, [f"predictions lack column(s) {missing}"])
    return frame


def primary_value(task: str, group: pd.DataFrame) -> float | None:
    """The primary metric's point estimate on one (cohort, task) slice of a predictions file."""
    prediction = group["prediction"].to_numpy(float)
    if task == "lesion_pd":
        metric = lesion_pd_metrics(
            group["label"].to_numpy(float), prediction, group["patient_id"].to_numpy(), n_boot=0
        )["auc"]
    else:
        time, event = group["time"].to_numpy(float), group["event"].to_numpy(float)
        # Harrell's C does not use the training cohort; pass the cohort itself.
        metric = survival_metrics(
            time, event, prediction, train_time=time, train_event=event, horizons=(), n_boot=0
        )["c_index"]
    return metric.value


def predictions_problems(record: Mapping[str, Any], frame: pd.DataFrame) -> list[str]:
    """Why ``frame`` is not the predictions of ``record`` (an empty list: it is).

    Ids unique; the (cohort, task) pairs those of the record; every value finite; and the
    primary metric recomputed from the rows equal to the record's, which ties the two files.
    """
    problems = []
    pairs = {(c, t) for c, per in record["metrics"].items() for t in per}
    present = set(zip(frame["cohort"], frame["task"], strict=True))
    if present != pairs:
        problems.append(
            f"predictions cover (cohort, task) {sorted(present)}, the record {sorted(pairs)}"
        )
    duplicated = frame.duplicated(["cohort", "task", "id"])
    if duplicated.any():
        first = frame.loc[duplicated, ["cohort", "task", "id"]].iloc[0].tolist()
        problems.append(f"{int(duplicated.sum())} duplicated prediction rows, e.g. {first}")
    values = pd.to_numeric(frame["prediction"], errors="coerce").to_numpy(float)
    if not np.isfinite(values).all():
        problems.append(f"{int((~np.isfinite(values)).sum())} predictions are not finite numbers")
    if problems:
        return problems
    scope = record["provenance"]["config"]["protocol"].get("lesion_scope", "all")
    for (cohort, task), group in frame.groupby(["cohort", "task"], sort=False):
        if task == "lesion_pd" and scope != "all":
            continue  # the record scored a subset the file cannot name (no irradiated column)
        recorded = record["metrics"][cohort][task][PRIMARY_METRIC[task]]
        try:
            value = primary_value(task, group)
        except ValueError as err:
            problems.append(f"{cohort}/{task}: the predictions cannot be scored ({err})")
            continue
        if len(group) != recorded["n"]:
            problems.append(
                f"{cohort}/{task}: {len(group)} predictions, the record scored n={recorded['n']}"
            )
        elif (value is None) != (recorded["value"] is None) or (
            value is not None and abs(value - recorded["value"]) > VALUE_TOLERANCE
        ):
            problems.append(
                f"{cohort}/{task}: the predictions give {PRIMARY_METRIC[task]}={value}, the "
                f"record says {recorded['value']} (they are not this record's predictions)"
            )
    return problems
