"""A record's predictions scored with the harness's own labels, never the file's.

A run folder's ``predictions.csv`` carries ``label``, ``time`` and ``event`` columns so that
anyone can re-score it, and a record carries its metrics; both are files a contributor writes.
Before a record goes on the board, ``submit`` loads the board's data itself, checks that every
outcome column is the harness's, and scores the predictions with the harness's scoring code: the
record's metrics must be what that gives. A record of other data, a predictions file with one
label changed, or metrics that the predictions do not give, is refused with the first difference.
The same loaded data give the oracle's predictions (:mod:`.oracle`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from benchmark.leaderboard.differences import first_prediction_difference, first_value_difference
from benchmark.records.reading import Reference
from benchmark.records.record_format import CV_KEY_SUFFIX, PROJECT_ROOT

if TYPE_CHECKING:
    from benchmark.api.cohort import LabelledCohort
    from benchmark.data.source import Dataset

# Metrics recomputed from the same predictions and labels: the same code, the same resamples.
RESCORE_TOLERANCE = 1e-9


def cache_dir() -> Path:
    """Where the harness keeps its data and caches: as ``conf/paths/default.yaml`` says."""
    return Path(os.environ.get("NSCLC_IO_BENCH_CACHE") or PROJECT_ROOT / ".cache")


@dataclass(frozen=True)
class BoardData:
    """The board's data as the harness scores it: loaded once by ``submit``, which re-scores a
    run and writes the oracle's predictions from the same cohorts."""

    dataset: Dataset
    by_key: dict[str, LabelledCohort]  # the protocol's cohort keys (development + "_cv", externals)
    development: LabelledCohort


def board_data(reference: Reference, cache: Path | None = None) -> BoardData:
    """Load (simulating, if needed) the data of the board ``reference`` describes."""
    from benchmark.data.source import open_dataset

    protocol = reference.protocol
    development = protocol["development"]
    names = [development, *protocol["external"]]
    dataset = open_dataset(reference.data, names, cache or cache_dir(), workers=1)
    cohorts = dataset.load(names)
    by_key = {development + CV_KEY_SUFFIX: cohorts[development]}
    by_key.update({name: cohorts[name] for name in protocol["external"]})
    return BoardData(dataset, by_key, cohorts[development])


def rescore_problems(
    record: Mapping[str, Any],
    predictions: pd.DataFrame,
    reference: Reference,
    data: BoardData | None = None,
) -> list[str]:
    """Why ``record`` and its ``predictions`` are not what the harness's data and scoring give
    (empty: they are). Loads the board's data unless given."""
    from benchmark.evaluation.scoring import as_dicts, attach_outcomes, score

    data = data or board_data(reference)
    fingerprint = record["provenance"]["data_fingerprint"]
    if fingerprint != data.dataset.fingerprint:
        return [
            f"its data fingerprint {fingerprint} is not the board's data "
            f"{data.dataset.fingerprint} (conf/data/{reference.data_name}.yaml)"
        ]
    by_key = data.by_key
    unknown = sorted(set(predictions["cohort"]) - set(by_key))
    if unknown:
        return [f"predictions of unknown cohort(s) {unknown}"]
    bare = predictions[["cohort", "task", "id", "patient_id", "prediction"]]
    try:
        harness = attach_outcomes(bare, by_key)
    except KeyError as err:
        return [f"predictions name an id the board's data does not hold: {err}"]
    found = first_prediction_difference(harness, predictions)
    if found is not None:
        return [f"its outcome columns are not the harness's labels: {found}"]
    metrics = as_dicts(score(bare, by_key, data.development, reference.protocol))
    found = first_value_difference(record["metrics"], metrics, "metrics", RESCORE_TOLERANCE)
    if found is not None:
        return [f"its metrics are not what the harness scores from its predictions: {found}"]
    return []


__all__ = ["BoardData", "board_data", "cache_dir", "rescore_problems"]
