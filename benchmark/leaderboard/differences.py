"""The first difference between a committed record (or its predictions) and its re-run.

``verify`` reports where a record stops reproducing, not just that it does: the first prediction
row (cohort, task, id, column) in the committed file's order, or the first metric (dotted key)
that differs. ``tolerance`` 0 means bit-identical; GPU records are compared within the
throughput accuracy gate's tolerance instead (:func:`benchmark.leaderboard.verify.tolerance`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

KEY = ["cohort", "task", "id"]
# Compared row by row: the prediction, then what the data give (a different label is other data).
COMPARED = ("prediction", "patient_id", "label", "time", "event")
RECORD_SECTIONS = ("data_fingerprint", "folds", "metrics", "oracle")


def _same_numbers(a: pd.Series, b: pd.Series, tolerance: float) -> np.ndarray:
    x = pd.to_numeric(a, errors="coerce").to_numpy(float)
    y = pd.to_numeric(b, errors="coerce").to_numpy(float)
    both_missing = np.isnan(x) & np.isnan(y)
    with np.errstate(invalid="ignore"):
        close = (x == y) if tolerance == 0 else (np.abs(x - y) <= tolerance)
    return both_missing | close


def first_prediction_difference(
    committed: pd.DataFrame, rerun: pd.DataFrame, tolerance: float = 0.0
) -> str | None:
    """Where ``rerun`` first differs from ``committed`` (None: they agree), as
    ``<cohort>/<task> id <id>, column <col>: committed <a>, re-run <b>``."""
    merged = committed.merge(
        rerun, on=KEY, how="outer", suffixes=("_c", "_r"), indicator=True, sort=False
    )
    same = (merged["_merge"] == "both").to_numpy().copy()
    for column in COMPARED:
        a, b = merged[column + "_c"], merged[column + "_r"]
        if column == "patient_id":
            same &= (a.astype(str) == b.astype(str)).to_numpy()
        else:
            same &= _same_numbers(a, b, tolerance)
    if same.all():
        return None
    row = merged.iloc[int(np.argmin(same))]
    where = f"{row['cohort']}/{row['task']} id {row['id']}"
    if row["_merge"] == "left_only":
        return f"{where}: in the committed predictions, not in the re-run's"
    if row["_merge"] == "right_only":
        return f"{where}: in the re-run's predictions, not in the committed ones"
    for column in COMPARED:
        a, b = row[column + "_c"], row[column + "_r"]
        if column == "patient_id":
            differs = str(a) != str(b)
        else:
            differs = not _same_numbers(pd.Series([a]), pd.Series([b]), tolerance)[0]
        if differs:
            return f"{where}, column {column}: committed {_show(a)}, re-run {_show(b)}"
    raise AssertionError("unreachable: a row differs in no column")


def _show(value: Any) -> str:
    """A value as the CSV holds it (numpy scalars as plain floats, every digit kept)."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def max_prediction_difference(committed: pd.DataFrame, rerun: pd.DataFrame) -> float | None:
    """max |committed - re-run| over the rows both have (None: no row in common)."""
    merged = committed.merge(rerun, on=KEY, suffixes=("_c", "_r"))
    if merged.empty:
        return None
    a = pd.to_numeric(merged["prediction_c"], errors="coerce").to_numpy(float)
    b = pd.to_numeric(merged["prediction_r"], errors="coerce").to_numpy(float)
    return float(np.nanmax(np.abs(a - b)))


def first_value_difference(a: Any, b: Any, where: str, tolerance: float) -> str | None:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in [*a, *(k for k in b if k not in a)]:
            here = f"{where}.{key}"
            if key not in b:
                return f"{here}: in the committed record, not in the re-run's"
            if key not in a:
                return f"{here}: in the re-run's record, not in the committed one"
            found = first_value_difference(a[key], b[key], here, tolerance)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_value_difference(x, y, f"{where}[{i}]", tolerance)
            if found:
                return found
        return None
    numbers = isinstance(a, int | float) and isinstance(b, int | float)
    if numbers and not isinstance(a, bool) and not isinstance(b, bool):
        if a == b or (tolerance > 0 and math.isclose(a, b, rel_tol=0, abs_tol=tolerance)):
            return None
    elif a == b:
        return None
    return f"{where}: committed {a!r}, re-run {b!r}"


def first_record_difference(
    committed: Mapping[str, Any], rerun: Mapping[str, Any], tolerance: float = 0.0
) -> str | None:
    """The first differing data fingerprint, fold digest, metric or oracle value (dotted key)."""
    for section in RECORD_SECTIONS:
        source = committed if section in ("metrics", "oracle") else committed["provenance"]
        target = rerun if section in ("metrics", "oracle") else rerun["provenance"]
        found = first_value_difference(source[section], target[section], section, tolerance)
        if found:
            return found
    return None


__all__ = [
    "first_prediction_difference",
    "first_record_difference",
    "first_value_difference",
    "max_prediction_difference",
]
