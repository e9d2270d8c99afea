"""The oracle's own predictions: the simulator's truth, stored beside the records it is scored in.

A record keeps the oracle's metrics, not the truth's per-lesion probabilities, so a board built
from records alone could draw the oracle's AUC but not its ROC curve. ``submit`` (and
``python -m benchmark.leaderboard oracle``) therefore writes ``results/oracle.predictions.csv.gz``
from the board's data: one row per lesion (``lesion_pd``: the true p(PD)) and per patient
(``os``, ``pfs``: the true linear predictor) of every cohort and task of the protocol, with the
harness's outcome columns, as a record's predictions hold them. Its first line names the data
(``# data_fingerprint: sha256:...``); the same data always give the same bytes.

The file is not a record, and anyone can edit it, so the board checks it when it loads
(:func:`oracle_problems`): the records' data, their ids and outcome columns, and for each
(cohort, task) the primary metric every record states for its oracle. A board without the file
(one older than it, or data without a truth) draws no oracle curve.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from benchmark.leaderboard.predictions import (
    COLUMNS,
    PRIMARY_METRIC,
    VALUE_TOLERANCE,
    compress,
    parse_predictions,
    primary_value,
)
from benchmark.records.reading import RecordError, expected_cohort_keys
from benchmark.records.record_format import CV_KEY_SUFFIX
from benchmark.utils.atomic import write_atomic

if TYPE_CHECKING:
    from benchmark.leaderboard.rescore import BoardData
    from benchmark.leaderboard.store import Entry

ORACLE = "oracle.predictions.csv.gz"
FINGERPRINT = "# data_fingerprint: "
OUTCOMES = ("patient_id", "label", "time", "event")
REWRITE = "rewrite it: python -m benchmark.leaderboard oracle"


def oracle_frame(data: BoardData, protocol: Mapping[str, Any]) -> pd.DataFrame | None:
    """The truth of every (cohort, task) of the protocol as predictions, with the harness's
    outcome columns; None when the data have no truth (a folder of real data)."""
    from benchmark.evaluation.scoring import attach_outcomes

    parts = []
    for key, labelled in data.by_key.items():
        truth = data.dataset.truth(key.removesuffix(CV_KEY_SUFFIX))
        if truth is None:
            return None
        for task in protocol["tasks"]:
            # The ids and values score_oracle scores (benchmark/evaluation/scoring.py), in the same
            # order.
            if task == "lesion_pd":
                ids = pd.Index(labelled.cohort.lesion_ids)
                values = truth.lesion_p_pd.loc[ids].to_numpy(float)
                patients = labelled.cohort.lesions.loc[ids, "patient_id"].to_numpy()
            else:
                ids = pd.Index(labelled.cohort.patient_ids)
                values = truth.patient_lp.loc[ids, task].to_numpy(float)
                patients = ids.to_numpy()
            parts.append(
                pd.DataFrame(
                    {
                        "cohort": key,
                        "task": task,
                        "id": ids.to_numpy(),
                        "patient_id": patients,
                        "prediction": values,
                    }
                )
            )
    return attach_outcomes(pd.concat(parts, ignore_index=True), data.by_key)[list(COLUMNS)]


def oracle_bytes(frame: pd.DataFrame, fingerprint: str) -> bytes:
    """The file's bytes: the fingerprint line, then the CSV, gzip'd without a timestamp."""
    text = f"{FINGERPRINT}{fingerprint}\n" + frame.to_csv(index=False)
    return compress(text.encode("utf-8"))


def write_oracle(results_dir: Path, data: BoardData, protocol: Mapping[str, Any]) -> Path | None:
    """Write ``results_dir/oracle.predictions.csv.gz`` when it is missing or not what ``data``
    give; the path when written, None when it was up to date or the data have no truth."""
    frame = oracle_frame(data, protocol)
    if frame is None:
        return None
    target = Path(results_dir) / ORACLE
    raw = oracle_bytes(frame, data.dataset.fingerprint)
    if target.is_file() and target.read_bytes() == raw:
        return None
    write_atomic(target, raw)
    return target


def read_oracle(path: Path) -> tuple[str, pd.DataFrame]:
    """The fingerprint and the rows of an oracle file; :class:`RecordError` if unreadable."""
    try:
        text = gzip.decompress(Path(path).read_bytes())
    except (OSError, ValueError, EOFError) as err:
        raise RecordError(path, [f"cannot be read ({err})"]) from None
    first, _, rest = text.partition(b"\n")
    line = first.decode("utf-8", errors="replace")
    if not line.startswith(FINGERPRINT):
        raise RecordError(path, [f"its first line is not {FINGERPRINT.strip()!r} ({REWRITE})"])
    return line.removeprefix(FINGERPRINT).strip(), parse_predictions(rest, path)


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Equal numbers, both missing counting as equal (``label`` of a survival row)."""
    x = pd.to_numeric(a, errors="coerce").to_numpy(float)
    y = pd.to_numeric(b, errors="coerce").to_numpy(float)
    return (np.isnan(x) & np.isnan(y)) | (x == y)


def _outcome_difference(oracle: pd.DataFrame, model: pd.DataFrame, name: str) -> str | None:
    """The first id (in the oracle's order) where the oracle's ids or outcome columns are not
    those of a record's predictions of the same (cohort, task)."""
    mine, known = set(oracle["id"]), set(model["id"])
    missing = sorted(known - mine)
    if missing:
        return f"id {missing[0]} of {name} is missing ({len(missing)} in all)"
    extra = [i for i in oracle["id"] if i not in known]
    if extra:
        return f"id {extra[0]} is not in {name} ({len(extra)} in all)"
    theirs = model.set_index("id").loc[oracle["id"]]
    for column in OUTCOMES:
        a, b = oracle[column].reset_index(drop=True), theirs[column].reset_index(drop=True)
        if column == "patient_id":
            same = (a.astype(str) == b.astype(str)).to_numpy()
        else:
            same = _same(a, b)
        if not same.all():
            i = int(np.argmin(same))
            return (
                f"id {oracle['id'].iloc[i]}, column {column}: {a.iloc[i]!r} here, "
                f"{b.iloc[i]!r} in {name}"
            )
    return None


def oracle_problems(
    fingerprint: str,
    frame: pd.DataFrame,
    entries: Sequence[Entry],
    protocol: Mapping[str, Any],
) -> list[str]:
    """Why an oracle file is not the truth of the board's ``entries`` (empty: it is); the first
    difference only, since one is enough to refuse the file."""
    if not entries:
        return []  # nothing to check against, and nothing that draws it
    ordered = sorted(entries, key=lambda e: e.path.name)
    theirs = ordered[0].record["provenance"]["data_fingerprint"]  # shared (load_entries checks)
    if fingerprint != theirs:
        return [f"its data fingerprint {fingerprint} is not the records' {theirs}; {REWRITE}"]
    expected = [(c, t) for c in expected_cohort_keys(protocol) for t in protocol["tasks"]]
    present = list(dict.fromkeys(zip(frame["cohort"], frame["task"], strict=True)))
    if sorted(present) != sorted(expected):
        return [f"it covers (cohort, task) {present}, the protocol {expected}; {REWRITE}"]
    duplicated = frame.duplicated(["cohort", "task", "id"])
    if duplicated.any():
        first = frame.loc[duplicated, ["cohort", "task", "id"]].iloc[0].tolist()
        return [f"{int(duplicated.sum())} duplicated rows, e.g. {first}"]
    values = pd.to_numeric(frame["prediction"], errors="coerce").to_numpy(float)
    if not np.isfinite(values).all():
        return [f"{int((~np.isfinite(values)).sum())} predictions are not finite numbers"]
    scope = protocol.get("lesion_scope", "all")
    for (cohort, task), group in frame.groupby(["cohort", "task"], sort=False):
        stated = [
            (e.path.name, e.record["oracle"][cohort][task][PRIMARY_METRIC[task]])
            for e in ordered
            if task in e.record["oracle"].get(cohort, {})
        ]
        if not stated:
            continue  # no record scored this (cohort, task): no section shows it
        for entry in ordered:
            rows = entry.predictions
            rows = rows[(rows["cohort"] == cohort) & (rows["task"] == task)]
            if len(rows):
                found = _outcome_difference(group.reset_index(drop=True), rows, entry.path.name)
                if found:
                    return [f"{cohort}/{task}: {found}"]
                break  # one record's ids suffice: the metrics below tie the file to every record
        if task == "lesion_pd" and scope != "all":
            continue  # the records scored a subset the file cannot name (no irradiated column)
        metric = PRIMARY_METRIC[task]
        try:
            value = primary_value(task, group)
        except ValueError as err:
            return [f"{cohort}/{task}: its rows cannot be scored ({err})"]
        for name, recorded in stated:
            if (value is None) != (recorded["value"] is None) or (
                value is not None and abs(value - recorded["value"]) > VALUE_TOLERANCE
            ):
                return [
                    f"{cohort}/{task}: its rows give {metric}={value}, the oracle of {name} is "
                    f"{recorded['value']} (they are not the truth the records were scored with)"
                ]
    return []


def load_oracle(
    path: Path, entries: Sequence[Entry], protocol: Mapping[str, Any]
) -> tuple[pd.DataFrame | None, list[str]]:
    """The checked oracle rows of a board (None when the file is missing) and the refusals."""
    path = Path(path)
    if not path.is_file():
        return None, []
    try:
        fingerprint, frame = read_oracle(path)
    except RecordError as err:
        return None, [str(err)]
    problems = oracle_problems(fingerprint, frame, entries, protocol)
    if problems:
        return None, [str(RecordError(path, problems))]
    return frame, []


__all__ = [
    "ORACLE",
    "load_oracle",
    "oracle_bytes",
    "oracle_frame",
    "oracle_problems",
    "read_oracle",
    "write_oracle",
]
