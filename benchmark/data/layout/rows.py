"""Row checks of the patient, lesion and truth tables, into typed records.

Each bad cell is one problem; the records keep only the values that passed, which is what the
file checks and the loaded frames build on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from benchmark.api.cohort import ARMS
from benchmark.data.layout.names import (
    LESIONS_CSV,
    PATIENTS_CSV,
    TRUTH,
    TRUTH_LESION_COLUMNS,
    TRUTH_PATIENT_COLUMNS,
)
from benchmark.data.layout.problems import Problems, some_of
from benchmark.data.layout.tables import Table, read_table


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _integer(text: str) -> int | None:
    value = _number(text)
    return int(value) if value is not None and value == int(value) else None


def _flag(text: str) -> int | None:
    value = _number(text)
    return int(value) if value in (0.0, 1.0) else None


def _bad_id(value: str) -> str | None:
    """Why an id cannot name a file (ids become ``<id>.nii.gz``), or None."""
    if value in (".", "..") or any(c in value for c in "/\\\0") or value.startswith("."):
        return "expected an id usable as a file name (no '/', '\\', leading '.')"
    return None


def _show(value: str) -> str:
    return repr(value) if value else "blank"


@dataclass
class PatientRecord:
    """A patient row's values that passed their checks (None: blank or bad), with its line."""

    line: int
    arm: str | None = None
    pdl1_tps: float | None = None
    age: float | None = None
    sex: str | None = None
    ecog: int | None = None
    os_months: float | None = None
    os_event: int | None = None
    pfs_months: float | None = None
    pfs_event: int | None = None


@dataclass
class LesionRecord:
    """A lesion row's values that passed their checks (None: blank or bad), with its line."""

    line: int
    patient_id: str | None = None
    mask_label: int | None = None
    site: str | None = None
    irradiated: int | None = None
    pd: int | None = None


def _check_ids(table: Table, column: str, what: str, problems: Problems) -> dict[str, int]:
    """Report empty, unusable and duplicate ids; return the first line of each usable id."""
    first: dict[str, int] = {}
    if not table.has(column):
        return first
    for row, line in zip(table.rows, table.lines, strict=True):
        value = row[column]
        if not value:
            problems.add(
                table.file, f"empty {column}; expected a non-empty {what} id", line, column
            )
        elif why := _bad_id(value):
            problems.add(
                table.file, f"{column} {value!r} is not usable; {why}", line, column, value
            )
        elif value in first:
            problems.add(
                table.file,
                f"duplicate {column} {value!r}, also on line {first[value]}; "
                f"expected each {what} once",
                line,
                column,
                value,
            )
        else:
            first[value] = line
    return first


def check_patients(table: Table, problems: Problems) -> dict[str, PatientRecord]:
    """Check the patient table; the records by id (first row of each id)."""
    rel = table.file
    if not table.rows:
        problems.add(rel, "no patient rows; expected one row per patient under the header")
    first = _check_ids(table, "patient_id", "patient", problems)
    patients: dict[str, PatientRecord] = {}
    for row, line in zip(table.rows, table.lines, strict=True):
        pid = row.get("patient_id") or None
        rec = PatientRecord(line)
        if pid is not None and first.get(pid) == line:
            patients[pid] = rec
        if line in table.ragged:
            continue

        def bad(column: str, message: str, pid: str | None = pid, line: int = line) -> None:
            problems.add(rel, message, line, column, pid)

        if table.has("arm"):
            if row["arm"] in ARMS:
                rec.arm = row["arm"]
            else:
                bad("arm", f"arm {_show(row['arm'])} is not one of {', '.join(ARMS)}")
        if table.has("pdl1_tps") and row["pdl1_tps"]:
            value = _number(row["pdl1_tps"])
            if value is None or not 0 <= value <= 100:
                bad(
                    "pdl1_tps",
                    f"pdl1_tps {row['pdl1_tps']!r} is out of range; expected blank "
                    "(unknown) or a number in [0, 100]",
                )
            else:
                rec.pdl1_tps = value
        if table.has("age") and row["age"]:
            value = _number(row["age"])
            if value is None or not 0 <= value <= 130:
                bad("age", f"age {row['age']!r} is not an age; expected blank or years in [0, 130]")
            else:
                rec.age = value
        if table.has("sex"):
            rec.sex = row["sex"] or None
        if table.has("ecog") and row["ecog"]:
            value = _integer(row["ecog"])
            if value is None or not 0 <= value <= 4:
                bad(
                    "ecog",
                    f"ecog {row['ecog']!r} is not an ECOG score; expected blank or an integer 0-4",
                )
            else:
                rec.ecog = value
        for endpoint in ("os", "pfs"):
            time_col, event_col = f"{endpoint}_months", f"{endpoint}_event"
            if table.has(time_col):
                text = row[time_col]
                value = _number(text)
                if not text:
                    bad(time_col, f"missing time; expected {time_col} as a number of months > 0")
                elif value is None:
                    bad(time_col, f"{time_col} {text!r} is not a number; expected months > 0")
                elif value <= 0:
                    bad(
                        time_col,
                        f"{time_col} {text} is not > 0; expected a positive time in months",
                    )
                else:
                    setattr(rec, time_col, value)
            if table.has(event_col):
                flag = _flag(row[event_col])
                if flag is None:
                    bad(
                        event_col,
                        f"{event_col} {_show(row[event_col])} is not an event flag; "
                        "expected 0 (censored) or 1 (event)",
                    )
                else:
                    setattr(rec, event_col, flag)
        both = rec.pfs_months is not None and rec.os_months is not None
        if both and rec.pfs_months > rec.os_months:  # type: ignore[operator]
            bad(
                "pfs_months",
                f"pfs_months {row['pfs_months']} exceeds os_months "
                f"{row['os_months']}; PFS cannot exceed OS",
            )
    return patients


def check_lesions(
    table: Table, patients: dict[str, PatientRecord] | None, problems: Problems
) -> tuple[dict[str, LesionRecord], set[str], dict[str, set[int]]]:
    """Check the lesion table.

    Returns the lesions by id (first row of each id), the patients with a row of bad or repeated
    mask_label, and the labels that some row (even one of a repeated lesion_id) claims per patient.
    """
    rel = table.file
    first = _check_ids(table, "lesion_id", "lesion", problems)
    lesions: dict[str, LesionRecord] = {}
    unlabelled: set[str] = set()
    labels_seen: dict[tuple[str, int], tuple[str, int]] = {}
    for row, line in zip(table.rows, table.lines, strict=True):
        lid = row.get("lesion_id") or None
        rec = LesionRecord(line)
        if lid is not None and first.get(lid) == line:
            lesions[lid] = rec
        if line in table.ragged:
            unlabelled.add(row.get("patient_id", ""))  # its label, if any, is not known
            continue

        def bad(column: str, message: str, lid: str | None = lid, line: int = line) -> None:
            problems.add(rel, message, line, column, lid)

        if table.has("patient_id"):
            pid = row["patient_id"]
            if not pid:
                bad("patient_id", "empty patient_id; expected the id of the lesion's patient")
            elif patients is not None and pid not in patients:
                bad(
                    "patient_id",
                    f"lesion {lid or '(no id)'} of unknown patient {pid!r}; "
                    f"expected a patient_id of {rel.rsplit('/', 1)[0]}/{PATIENTS_CSV}",
                )
            else:
                rec.patient_id = pid
        if table.has("mask_label"):
            label = _integer(row["mask_label"])
            if label is None or label <= 0:
                bad(
                    "mask_label",
                    f"mask_label {_show(row['mask_label'])} is not a positive "
                    "integer; expected the lesion's label in its patient's mask",
                )
                if rec.patient_id is not None:
                    unlabelled.add(rec.patient_id)
            elif rec.patient_id is not None:
                other = labels_seen.get((rec.patient_id, label))
                if other is not None:
                    unlabelled.add(rec.patient_id)
                    bad(
                        "mask_label",
                        f"mask_label {label} of patient {rec.patient_id} is also "
                        f"used by lesion {other[0]} (line {other[1]}); expected one label per "
                        "lesion",
                    )
                else:
                    labels_seen[(rec.patient_id, label)] = (lid or "(no id)", line)
                    rec.mask_label = label
            else:
                rec.mask_label = label
        if table.has("site"):
            rec.site = row["site"] or None
        for column in ("irradiated", "pd"):
            if table.has(column):
                flag = _flag(row[column])
                if flag is None:
                    bad(
                        column,
                        f"{column} {_show(row[column])} is not 0 or 1; expected 0 (no) or 1 (yes)",
                    )
                else:
                    setattr(rec, column, flag)
    claimed: dict[str, set[int]] = {}
    for pid, label in labels_seen:
        claimed.setdefault(pid, set()).add(label)
    return lesions, unlabelled, claimed


def check_truth(
    cohort_dir: Path,
    cohort: str,
    lesion_ids: set[str] | None,
    patient_ids: set[str] | None,
    problems: Problems,
) -> None:
    """Check the optional truth tables: columns, ids (known, unique, complete) and values."""
    specs = (
        (LESIONS_CSV, TRUTH_LESION_COLUMNS, lesion_ids, "lesion"),
        (PATIENTS_CSV, TRUTH_PATIENT_COLUMNS, patient_ids, "patient"),
    )
    for name, columns, known, what in specs:
        path = cohort_dir / TRUTH / name
        if not path.is_file():
            continue
        rel = f"{cohort}/{TRUTH}/{name}"
        table = read_table(path, rel, columns, problems)
        if table is None:
            continue
        first = _check_ids(table, columns[0], what, problems)
        for row, line in zip(table.rows, table.lines, strict=True):
            key = row.get(columns[0]) or None
            if known is not None and key is not None and key not in known:
                problems.add(
                    rel,
                    f"truth for unknown {what} {key!r}; expected a {columns[0]} of {cohort}/{name}",
                    line,
                    columns[0],
                    key,
                )
            for column in columns[1:]:
                if not table.has(column):
                    continue
                value = _number(row[column])
                if column == "p_pd" and (value is None or not 0 <= value <= 1):
                    problems.add(
                        rel,
                        f"p_pd {_show(row[column])} is not a probability; "
                        "expected a number in [0, 1]",
                        line,
                        column,
                        key,
                    )
                elif value is None:
                    problems.add(
                        rel,
                        f"{column} {_show(row[column])} is not a number; expected "
                        "a finite linear predictor",
                        line,
                        column,
                        key,
                    )
        if known is not None and table.has(columns[0]):
            missing = sorted(known - set(first))
            if missing:
                problems.add(
                    rel,
                    f"no truth for {len(missing)} {what}"
                    f"{'' if len(missing) == 1 else 's'}: {some_of(missing)}; expected one "
                    f"row per {what} of {cohort}/{name}",
                )
