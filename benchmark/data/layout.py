"""The on-disk cohort layout: validation, loading into the blinded view, the dataset fingerprint.

One folder per cohort under a root::

    <root>/<cohort>/patients.csv                 one row per patient (covariates + OS/PFS)
    <root>/<cohort>/lesions.csv                  one row per lesion (mask label, site, PD)
    <root>/<cohort>/images/<patient_id>.nii.gz   CT in Hounsfield units
    <root>/<cohort>/masks/<patient_id>.nii.gz    instance label map, lesion = its mask_label
    <root>/<cohort>/truth/{lesions,patients}.csv optional: the simulator's ground truth

:func:`validate` reads every table and every image/mask voxel once and reports *all* problems,
one :class:`Problem` each. The same pass hashes each file's geometry and voxels, which gives the
per-patient content keys and the dataset :func:`fingerprint`. :func:`load` refuses a cohort with
any problem (:class:`CohortError`) and otherwise returns the blinded :class:`Cohort` (no outcome
column, image paths into a folder of hard links that holds no table) and its :class:`Outcomes`.

Loaded tables are sorted by id, and the fingerprint hashes the tables sorted the same way, so
the row order of a CSV file changes neither the fingerprint nor anything computed downstream.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import json
import math
import os
import shutil
import struct
import tempfile
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.cohort import (
    ARMS,
    COHORTS,
    LESION_COLUMNS,
    LESION_OUTCOME_COLUMNS,
    PATIENT_COLUMNS,
    PATIENT_OUTCOME_COLUMNS,
    Cohort,
    Outcomes,
    Truth,
)

PATIENTS_CSV = "patients.csv"
LESIONS_CSV = "lesions.csv"
IMAGES = "images"
MASKS = "masks"
TRUTH = "truth"
SUFFIX = ".nii.gz"

PATIENT_REQUIRED = PATIENT_COLUMNS + PATIENT_OUTCOME_COLUMNS
LESION_REQUIRED = LESION_COLUMNS + LESION_OUTCOME_COLUMNS
TRUTH_LESION_COLUMNS = ("lesion_id", "p_pd")
TRUTH_PATIENT_COLUMNS = ("patient_id", "lp_os", "lp_pfs")

FINGERPRINT_VERSION = "nsclc-io-bench/dataset/v1"
CACHE_VERSION = "layout-v1"
GEOMETRY_RTOL = 1e-4
_LIST_AT_MOST = 8


# --------------------------------------------------------------------------------------------
# Problems


@dataclass(frozen=True)
class Problem:
    """One problem of a dataset: ``<file>:<row> [<column>] <id>: <message>``.

    ``file`` is relative to the data root (``pembro_rt/lesions.csv``); ``row`` is the line number
    an editor shows (header = 1, first data row = 2); ``id`` is the patient or lesion concerned.
    """

    file: str
    message: str
    row: int | None = None
    column: str | None = None
    id: str | None = None

    def __str__(self) -> str:
        where = self.file if self.row is None else f"{self.file}:{self.row}"
        if self.column is not None:
            where += f" [{self.column}]"
        if self.id is not None:
            where += f" {self.id}"
        return f"{where}: {self.message}"


class CohortError(ValueError):
    """A dataset with problems; ``problems`` holds all of them, ``str()`` lists one per line."""

    def __init__(self, problems: Iterable[Problem], root: Path | str | None = None) -> None:
        self.problems = list(problems)
        self.root = root
        n = len(self.problems)
        head = f"{n} problem{'' if n == 1 else 's'}" + (f" in {root}" if root is not None else "")
        super().__init__("\n".join([head + ":", *map(str, self.problems)]))


class _Problems(list):
    """A list of :class:`Problem` with a shorthand to add one."""

    def add(
        self,
        file: str,
        message: str,
        row: int | None = None,
        column: str | None = None,
        id: str | None = None,  # noqa: A002 - the field's name
    ) -> None:
        self.append(Problem(file, message, row, column, id))


# --------------------------------------------------------------------------------------------
# Tables


@dataclass
class _Table:
    file: str  # relative to the root
    columns: list[str]
    header_line: int
    rows: list[dict[str, str]]
    lines: list[int]
    ragged: set[int] = field(default_factory=set)  # lines whose field count is not the header's

    def has(self, column: str) -> bool:
        return column in self.columns


def _read_table(
    path: Path, rel: str, required: Sequence[str], problems: _Problems
) -> _Table | None:
    """Parse a CSV file into stripped string cells with the editor line of every row.

    ``required[0]`` is the table's id column (named in the problem of a row of wrong width).
    Returns None when the file is missing or cannot be parsed (after reporting it). A table with
    missing columns is returned; the missing columns are reported once each.
    """
    if not path.is_file():
        problems.add(rel, f"missing file; expected a CSV table with columns {', '.join(required)}")
        return None
    records: list[tuple[int, list[str]]] = []  # (editor line where the record starts, cells)
    last = 0
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, strict=True)
            for record in reader:
                start, last = last + 1, reader.line_num
                if not any(cell.strip() for cell in record):
                    continue  # a blank line, or one of commas only
                records.append((start, [cell.strip() for cell in record]))
    except UnicodeDecodeError as err:
        problems.add(
            rel,
            f"not UTF-8 text (byte {err.object[err.start]:#04x} at offset "
            f"{err.start}); expected a UTF-8 CSV file",
        )
        return None
    except csv.Error as err:
        problems.add(rel, f"cannot parse as CSV: {err}", row=last + 1)
        return None
    except OSError as err:
        problems.add(rel, f"cannot read: {err.strerror or err}")
        return None
    if not records:
        problems.add(rel, f"empty file; expected a header line with columns {', '.join(required)}")
        return None

    header_line, columns = records[0]
    seen: dict[str, int] = {}
    for index, name in enumerate(columns, start=1):
        if name and name in seen:
            problems.add(
                rel,
                f"column {name!r} appears twice (columns {seen[name]} and {index}); "
                "expected unique column names",
                row=header_line,
                column=name,
            )
        seen.setdefault(name, index)
    for name in required:
        if name not in seen:
            problems.add(
                rel,
                f"missing column {name!r}; expected columns {', '.join(required)}",
                row=header_line,
                column=name,
            )

    rows, lines, ragged = [], [], set()
    width = len(columns)
    for line, cells in records[1:]:
        row: dict[str, str] = {}
        for name, cell in zip(columns, (cells + [""] * width)[:width], strict=True):
            row.setdefault(name, cell)
        if len(cells) != width and (len(cells) < width or any(cells[width:])):
            problems.add(
                rel,
                f"{len(cells)} fields, the header has {width}; expected one value per column "
                "(its values are not checked)",
                row=line,
                id=row.get(required[0]) or None,
            )
            ragged.add(line)
        rows.append(row)
        lines.append(line)
    return _Table(rel, columns, header_line, rows, lines, ragged)


def _canonical_table(table: _Table, key: str) -> bytes:
    """The table as content: columns sorted by name, rows sorted by id, cells stripped."""
    order = sorted(range(len(table.columns)), key=lambda i: (table.columns[i], i))
    names = [table.columns[i] for i in order]
    rows = sorted(table.rows, key=lambda r: r.get(key, ""))
    body = [[row.get(name, "") for name in names] for row in rows]
    return json.dumps(
        {"columns": names, "rows": body}, ensure_ascii=False, separators=(",", ":")
    ).encode()


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
class _Patient:
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
class _Lesion:
    line: int
    patient_id: str | None = None
    mask_label: int | None = None
    site: str | None = None
    irradiated: int | None = None
    pd: int | None = None


def _check_ids(table: _Table, column: str, what: str, problems: _Problems) -> dict[str, int]:
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


def _check_patients(table: _Table, problems: _Problems) -> dict[str, _Patient]:
    rel = table.file
    if not table.rows:
        problems.add(rel, "no patient rows; expected one row per patient under the header")
    first = _check_ids(table, "patient_id", "patient", problems)
    patients: dict[str, _Patient] = {}
    for row, line in zip(table.rows, table.lines, strict=True):
        pid = row.get("patient_id") or None
        rec = _Patient(line)
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


def _check_lesions(
    table: _Table, patients: dict[str, _Patient] | None, problems: _Problems
) -> tuple[dict[str, _Lesion], set[str], dict[str, set[int]]]:
    """Check the lesion table.

    Returns the lesions by id (first row of each id), the patients with a row of bad or repeated
    mask_label, and the labels that some row (even one of a repeated lesion_id) claims per patient.
    """
    rel = table.file
    first = _check_ids(table, "lesion_id", "lesion", problems)
    lesions: dict[str, _Lesion] = {}
    unlabelled: set[str] = set()
    labels_seen: dict[tuple[str, int], tuple[str, int]] = {}
    for row, line in zip(table.rows, table.lines, strict=True):
        lid = row.get("lesion_id") or None
        rec = _Lesion(line)
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


def _check_truth(
    cohort_dir: Path,
    cohort: str,
    lesion_ids: set[str] | None,
    patient_ids: set[str] | None,
    problems: _Problems,
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
        table = _read_table(path, rel, columns, problems)
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
                    f"{'' if len(missing) == 1 else 's'}: {_some(missing)}; expected one "
                    f"row per {what} of {cohort}/{name}",
                )


def _some(values: Sequence[Any]) -> str:
    shown = ", ".join(str(v) for v in values[:_LIST_AT_MOST])
    more = len(values) - _LIST_AT_MOST
    return shown + (f" (and {more} more)" if more > 0 else "")


# --------------------------------------------------------------------------------------------
# Images


class _Unreadable(Exception):
    """A file that cannot be read as NIfTI; the message says why."""


@dataclass(frozen=True)
class _FileInfo:
    key: str  # sha256 of geometry + pixel type + voxel bytes
    geometry: dict[str, Any]  # dimension, size, spacing, origin, direction, pixel_type, components
    labels: tuple[int, ...] | None  # the mask's non-zero labels (None for an image)
    issues: tuple[str, ...]  # problems of the file on its own (not 3-D, non-integer mask, ...)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "geometry": self.geometry,
            "labels": None if self.labels is None else list(self.labels),
            "issues": list(self.issues),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _FileInfo:
        labels = data["labels"]
        return cls(
            data["key"],
            data["geometry"],
            None if labels is None else tuple(labels),
            tuple(data["issues"]),
        )


def _nifti_expected_bytes(head: bytes) -> int | None:
    """Bytes a single-file NIfTI-1/2 needs (voxel offset + voxel data), from its header."""
    for order in ("<", ">"):
        if len(head) >= 348 and struct.unpack(order + "i", head[:4])[0] == 348:
            dim = struct.unpack(order + "8h", head[40:56])
            bitpix = struct.unpack(order + "h", head[72:74])[0]
            offset = int(struct.unpack(order + "f", head[108:112])[0])
            break
        if len(head) >= 540 and struct.unpack(order + "i", head[:4])[0] == 540:
            bitpix = struct.unpack(order + "h", head[14:16])[0]
            dim = struct.unpack(order + "8q", head[16:80])
            offset = struct.unpack(order + "q", head[168:176])[0]
            break
    else:
        return None
    if not 1 <= dim[0] <= 7 or bitpix <= 0 or any(d < 0 for d in dim[1 : dim[0] + 1]):
        return None
    return offset + math.prod(dim[1 : dim[0] + 1]) * bitpix // 8


def _check_stream(path: Path) -> None:
    """Read the whole file: a corrupt or truncated gzip stream, or missing voxels, raise.

    ITK's NIfTI reader fills a truncated .nii.gz with zeros without a word, so this cannot be
    left to it.
    """
    with path.open("rb") as handle:
        magic = handle.read(2)
        handle.seek(0)
        if magic != b"\x1f\x8b":  # not compressed: the header says how long the file must be
            head, total = handle.read(544), os.fstat(handle.fileno()).st_size
        else:
            try:
                with gzip.GzipFile(fileobj=handle, mode="rb") as stream:
                    head = stream.read(544)
                    total = len(head)
                    while chunk := stream.read(1 << 22):
                        total += len(chunk)
            except (EOFError, gzip.BadGzipFile, zlib.error) as err:
                raise _Unreadable(f"corrupt or truncated gzip data ({err})") from err
    expected = _nifti_expected_bytes(head)
    if expected is not None and total < expected:
        raise _Unreadable(
            f"truncated: {total} bytes of NIfTI data where its header needs {expected}"
        )


def _itk_message(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if "ERROR:" in line:
            return line.split("ERROR:", 1)[1].strip()
    return lines[-1] if lines else type(err).__name__


def _labels(array: np.ndarray, issues: list[str]) -> tuple[int, ...]:
    """The non-zero labels of a mask; non-integer or negative values go to ``issues``."""
    if array.dtype.kind == "f":
        whole = np.isfinite(array) & (array == np.round(array))
        if not whole.all():
            example = array[~whole].flat[0]
            issues.append(
                f"has non-integer values (e.g. {example:g}); expected an integer label map"
            )
            array = array[whole]
        array = array.astype(np.int64)
    elif array.dtype.kind not in "iub":
        issues.append(f"has voxel type {array.dtype}; expected an integer label map")
        return ()
    if array.size == 0:
        return ()
    low, high = int(array.min()), int(array.max())
    if low < 0:
        issues.append(f"has negative values (min {low}); expected labels >= 0 (0 = background)")
    if low >= 0 and high <= 1 << 16:
        counts = np.zeros(high + 1, np.int64)
        planes = array.reshape(array.shape[0], -1) if array.ndim > 1 else array[None]
        for plane in planes:  # one slice at a time, so as not to copy the volume as intp
            counts += np.bincount(plane.astype(np.intp, copy=False), minlength=high + 1)
        found = np.flatnonzero(counts)
    else:
        found = np.unique(array)
    return tuple(int(v) for v in found if v > 0)


def _read_nifti(path: Path, is_mask: bool) -> _FileInfo:
    """Read one image or mask fully: its content key, geometry, labels and own issues."""
    import SimpleITK as sitk

    _check_stream(path)
    reader = sitk.ImageFileReader()
    reader.SetImageIO("NiftiImageIO")
    reader.SetFileName(str(path))
    try:
        image = reader.Execute()
    except RuntimeError as err:
        raise _Unreadable(f"cannot read as NIfTI ({_itk_message(err)})") from err
    geometry = {
        "dimension": image.GetDimension(),
        "size": list(image.GetSize()),
        "spacing": list(image.GetSpacing()),
        "origin": list(image.GetOrigin()),
        "direction": list(image.GetDirection()),
        "pixel_type": image.GetPixelIDTypeAsString(),
        "components": image.GetNumberOfComponentsPerPixel(),
    }
    array = sitk.GetArrayViewFromImage(image)
    digest = hashlib.sha256(json.dumps(geometry, sort_keys=True).encode())
    digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    issues: list[str] = []
    if geometry["dimension"] != 3:
        issues.append(f"is {geometry['dimension']}-D; expected a 3-D volume")
    if geometry["components"] != 1:
        issues.append(f"has {geometry['components']} components per voxel; expected a scalar image")
    # (ITK's NIfTI reader turns NaN voxels into 0, so there is no NaN to look for here.)
    labels = None
    if is_mask:
        labels = _labels(array, issues) if geometry["components"] == 1 else ()
    return _FileInfo("sha256:" + digest.hexdigest(), geometry, labels, tuple(issues))


class _FileCache:
    """Per-file results in ``<cache_dir>/layout-v1/``, keyed by (absolute path, size, mtime_ns)."""

    def __init__(self, cache_dir: Path | None) -> None:
        self.folder = None if cache_dir is None else Path(cache_dir) / CACHE_VERSION

    def _entry(self, path: Path, is_mask: bool) -> tuple[Path, dict[str, Any]] | None:
        if self.folder is None:
            return None
        stat = path.stat()
        ident = {
            "path": str(path.resolve()),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "mask": is_mask,
        }
        name = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()
        return self.folder / f"{name}.json", ident

    def read(self, path: Path, is_mask: bool) -> _FileInfo:
        entry = self._entry(path, is_mask)
        if entry is not None:
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                data = json.loads(entry[0].read_text())
                if data["ident"] == entry[1]:
                    return _FileInfo.from_json(data["info"])
        info = _read_nifti(path, is_mask)
        if entry is not None:
            self._write(entry[0], {"ident": entry[1], "info": info.to_json()})
        return info

    def _write(self, target: Path, data: dict[str, Any]) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=target.parent)
        except OSError:
            return  # a read-only cache only costs speed
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle)
            os.replace(tmp, target)
        except OSError:
            Path(tmp).unlink(missing_ok=True)


def _differs(a: Sequence[float], b: Sequence[float]) -> bool:
    if len(a) != len(b):
        return True
    return any(
        abs(x - y) > GEOMETRY_RTOL * max(1.0, abs(x), abs(y)) for x, y in zip(a, b, strict=True)
    )


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in values) + ")"


# --------------------------------------------------------------------------------------------
# The scan: one pass over tables and files


@dataclass
class _CohortScan:
    name: str
    folder: Path
    patients_table: _Table | None = None
    lesions_table: _Table | None = None
    patients: dict[str, _Patient] = field(default_factory=dict)
    lesions: dict[str, _Lesion] = field(default_factory=dict)
    images: dict[str, Path] = field(default_factory=dict)
    masks: dict[str, Path] = field(default_factory=dict)
    files: dict[Path, _FileInfo] = field(default_factory=dict)
    unlabelled: set[str] = field(default_factory=set)  # patients with a lesion row of bad label
    claimed: dict[str, set[int]] = field(default_factory=dict)  # labels some lesion row names

    def content_key(self, pid: str) -> str:
        both = f"{self.files[self.images[pid]].key}\n{self.files[self.masks[pid]].key}"
        return "sha256:" + hashlib.sha256(both.encode()).hexdigest()


@dataclass(frozen=True)
class Scan:
    """The result of one pass over a dataset: all problems, and its fingerprint if it has none."""

    root: Path
    cohorts: tuple[str, ...]
    problems: list[Problem]
    fingerprint: str | None  # None when there are problems
    counts: dict[str, tuple[int, int]]  # cohort -> (patients, lesions) as parsed
    _detail: dict[str, _CohortScan] = field(repr=False, compare=False, default_factory=dict)


def _check_cohorts(cohorts: Sequence[str] | str) -> tuple[str, ...]:
    names = (cohorts,) if isinstance(cohorts, str) else tuple(cohorts)
    unknown = [n for n in names if n not in COHORTS]
    if unknown or not names:
        raise ValueError(f"unknown cohorts {unknown}; expected some of {', '.join(COHORTS)}")
    # canonical order, so that the fingerprint does not depend on how the caller lists them
    return tuple(n for n in COHORTS if n in names)


def _list_files(
    folder: Path, rel: str, what: str, patients: dict[str, _Patient] | None, problems: _Problems
) -> tuple[dict[str, Path], set[str]]:
    """The ``<id>.nii.gz`` files of a folder, and the ids whose file another file shadows.

    Strays and files of no patient are reported. NIfTI readers (niftilib, hence ITK) given
    ``P1.nii.gz`` read ``P1.nii`` or ``P1.hdr`` instead when one exists, so such a file is
    reported, and the file it shadows is not read.
    """
    found: dict[str, Path] = {}
    shadowed: set[str] = set()
    names = {p.name for p in folder.iterdir()}
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        name = entry.name
        if name.startswith("."):
            continue
        if not name.endswith(SUFFIX) or not entry.is_file() or name == SUFFIX:
            stem, _, ext = name.rpartition(".")
            shadows = ext.lower() in ("nii", "hdr") and f"{stem}{SUFFIX}" in names
            problems.add(
                f"{rel}/{name}",
                f"unexpected {'folder' if entry.is_dir() else 'file'} "
                f"in {rel}/; expected only <patient_id>{SUFFIX} files"
                + (f" (NIfTI readers would read it instead of {stem}{SUFFIX})" if shadows else ""),
            )
            if shadows:
                shadowed.add(stem)
            continue
        pid = name[: -len(SUFFIX)]
        if patients is not None and pid not in patients:
            problems.add(
                f"{rel}/{name}",
                f"{what} of no patient; {pid!r} is not a patient_id of "
                f"{rel.split('/')[0]}/{PATIENTS_CSV}",
                id=pid,
            )
            continue
        found[pid] = entry
    return {pid: path for pid, path in found.items() if pid not in shadowed}, shadowed


def _scan_tables(root: Path, cohort: str, problems: _Problems) -> _CohortScan:
    folder = root / cohort
    scan = _CohortScan(cohort, folder)
    if not folder.is_dir():
        problems.add(
            f"{cohort}/",
            f"missing cohort folder; expected {root / cohort} with "
            f"{PATIENTS_CSV}, {LESIONS_CSV}, {IMAGES}/ and {MASKS}/",
        )
        return scan
    before = len(problems)
    scan.patients_table = _read_table(
        folder / PATIENTS_CSV, f"{cohort}/{PATIENTS_CSV}", PATIENT_REQUIRED, problems
    )
    patients: dict[str, _Patient] | None = None  # None: the patient ids are not known
    if scan.patients_table is not None:
        scan.patients = _check_patients(scan.patients_table, problems)
        if scan.patients_table.has("patient_id"):
            patients = scan.patients
    patients_clean, before = len(problems) == before, len(problems)
    scan.lesions_table = _read_table(
        folder / LESIONS_CSV, f"{cohort}/{LESIONS_CSV}", LESION_REQUIRED, problems
    )
    if scan.lesions_table is not None:
        scan.lesions, scan.unlabelled, scan.claimed = _check_lesions(
            scan.lesions_table, patients, problems
        )
    lesions_clean = len(problems) == before

    for sub, what, target in ((IMAGES, "image", scan.images), (MASKS, "mask", scan.masks)):
        rel = f"{cohort}/{sub}"
        if not (folder / sub).is_dir():
            problems.add(
                f"{rel}/", f"missing folder; expected one <patient_id>{SUFFIX} {what} per patient"
            )
            continue
        found, shadowed = _list_files(folder / sub, rel, what, patients, problems)
        if patients is not None:
            for pid, rec in patients.items():
                if pid not in found and pid not in shadowed:
                    problems.add(
                        f"{cohort}/{PATIENTS_CSV}",
                        f"no {what} file; expected {rel}/{pid}{SUFFIX}",
                        rec.line,
                        None,
                        pid,
                    )
        target.update(found)
    # The truth's ids are checked against tables without problems only (no echo of those).
    _check_truth(
        folder,
        cohort,
        set(scan.lesions) if lesions_clean else None,
        set(scan.patients) if patients_clean else None,
        problems,
    )
    return scan


def _check_files(scan: _CohortScan, problems: _Problems) -> None:
    """Per patient: image/mask geometry agree, and mask labels match the lesion rows."""
    cohort = scan.name
    by_patient: dict[str, list[tuple[str, _Lesion]]] = {}
    for lid, lesion in scan.lesions.items():
        if lesion.patient_id is not None:
            by_patient.setdefault(lesion.patient_id, []).append((lid, lesion))
    for pid in sorted(set(scan.images) | set(scan.masks)):
        image = scan.files.get(scan.images.get(pid))  # type: ignore[arg-type]
        mask = scan.files.get(scan.masks.get(pid))  # type: ignore[arg-type]
        image_rel, mask_rel = f"{cohort}/{IMAGES}/{pid}{SUFFIX}", f"{cohort}/{MASKS}/{pid}{SUFFIX}"
        if image is not None and mask is not None:
            a, b = image.geometry, mask.geometry
            if a["size"] != b["size"]:
                problems.add(
                    mask_rel,
                    f"size {tuple(b['size'])} differs from the image's "
                    f"{tuple(a['size'])} ({image_rel}); expected mask and image on the "
                    "same grid",
                    id=pid,
                )
            for attr in ("spacing", "origin", "direction"):
                if _differs(a[attr], b[attr]):
                    problems.add(
                        mask_rel,
                        f"{attr} {_fmt(b[attr])} differs from the image's "
                        f"{_fmt(a[attr])} ({image_rel}); expected mask and image to "
                        "share size, spacing, origin and direction",
                        id=pid,
                    )
        if mask is None or mask.labels is None:
            continue
        present = set(mask.labels)
        rows = by_patient.get(pid, [])
        for lid, lesion in rows:
            if lesion.mask_label is not None and lesion.mask_label not in present:
                problems.add(
                    f"{cohort}/{LESIONS_CSV}",
                    f"mask_label {lesion.mask_label} is not "
                    f"in the mask {mask_rel} (labels present: "
                    f"{_some(sorted(present)) or 'none'})",
                    lesion.line,
                    "mask_label",
                    lid,
                )
        if pid in scan.unlabelled:
            continue  # a row with a bad label already explains an unclaimed label
        orphans = sorted(present - scan.claimed.get(pid, set()))
        if orphans and scan.lesions_table is not None and scan.lesions_table.has("mask_label"):
            problems.add(
                mask_rel,
                f"label{'' if len(orphans) == 1 else 's'} {_some(orphans)} "
                f"in the mask {'has' if len(orphans) == 1 else 'have'} no row in "
                f"{cohort}/{LESIONS_CSV}; expected one lesion row per label",
                id=pid,
            )


def scan(
    root: Path,
    cohorts: Sequence[str] = COHORTS,
    *,
    progress: bool = False,
    cache_dir: Path | None = None,
    workers: int | None = None,
) -> Scan:
    """Validate ``cohorts`` of ``root`` and fingerprint them, reading every voxel once.

    ``cache_dir`` keeps per-file results (content key, geometry, labels) across calls;
    ``workers`` threads read files in parallel (default: up to 4).
    """
    from tqdm.auto import tqdm

    root = Path(root)
    names = _check_cohorts(cohorts)
    problems = _Problems()
    if not root.is_dir():
        problems.add(
            ".",
            f"data root {root} is not a folder; expected one folder per cohort "
            f"({', '.join(names)})",
        )
        return Scan(root, names, list(problems), None, {})

    scans: dict[str, _CohortScan] = {}
    per_cohort: dict[str, _Problems] = {}
    jobs: list[tuple[str, str, Path, bool]] = []  # cohort, pid, path, is_mask
    for name in names:
        per_cohort[name] = _Problems()
        scans[name] = _scan_tables(root, name, per_cohort[name])
        for pid in sorted(set(scans[name].images) | set(scans[name].masks)):
            for source, is_mask in ((scans[name].images, False), (scans[name].masks, True)):
                if pid in source:
                    jobs.append((name, pid, source[pid], is_mask))

    cache = _FileCache(cache_dir)

    def read(job: tuple[str, str, Path, bool]) -> _FileInfo | str:
        try:
            return cache.read(job[2], job[3])
        except _Unreadable as err:
            return str(err)
        except OSError as err:
            return f"cannot read: {err.strerror or err}"

    results = _map(
        read,
        jobs,
        workers,
        tqdm(total=len(jobs), desc="validate", unit="file", disable=not progress, leave=False),
    )
    for (name, _pid, path, is_mask), result in zip(jobs, results, strict=True):
        rel = path.relative_to(root).as_posix()
        what = "mask" if is_mask else "image"
        if isinstance(result, str):
            per_cohort[name].add(rel, f"unreadable {what}: {result}; expected a NIfTI file")
            continue
        for issue in result.issues:
            per_cohort[name].add(rel, f"{what} {issue}")
        scans[name].files[path] = result
    for name in names:
        _check_files(scans[name], per_cohort[name])
        problems.extend(per_cohort[name])

    counts = {n: (len(s.patients), len(s.lesions)) for n, s in scans.items()}
    return Scan(
        root, names, list(problems), None if problems else _fingerprint(scans), counts, scans
    )


def _map(func: Callable[[Any], Any], items: list[Any], workers: int | None, bar: Any) -> list[Any]:
    """``func`` over ``items`` in order, on threads (reading, inflating, hashing drop the GIL)."""
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    out = []
    with bar:
        if workers <= 1 or len(items) <= 1:
            for item in items:
                out.append(func(item))
                bar.update()
            return out
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            for result in pool.map(func, items):
                out.append(result)
                bar.update()
    return out


def _fingerprint(scans: dict[str, _CohortScan]) -> str:
    content = {"version": FINGERPRINT_VERSION, "cohorts": []}
    for name, scan in scans.items():
        assert scan.patients_table is not None and scan.lesions_table is not None
        tables = {
            PATIENTS_CSV: _canonical_table(scan.patients_table, "patient_id"),
            LESIONS_CSV: _canonical_table(scan.lesions_table, "lesion_id"),
        }
        content["cohorts"].append(
            {
                "name": name,
                "tables": {k: hashlib.sha256(v).hexdigest() for k, v in tables.items()},
                "files": {
                    pid: [scan.files[scan.images[pid]].key, scan.files[scan.masks[pid]].key]
                    for pid in sorted(scan.patients)
                },
            }
        )
    blob = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


# --------------------------------------------------------------------------------------------
# Public API


def validate(
    root: Path,
    cohorts: Sequence[str] = COHORTS,
    *,
    progress: bool = False,
    cache_dir: Path | None = None,
    workers: int | None = None,
) -> list[Problem]:
    """All problems of ``cohorts`` under ``root`` (an empty list: the dataset is valid)."""
    return scan(root, cohorts, progress=progress, cache_dir=cache_dir, workers=workers).problems


def fingerprint(
    root: Path,
    cohorts: Sequence[str] = COHORTS,
    *,
    progress: bool = False,
    cache_dir: Path | None = None,
    workers: int | None = None,
) -> str:
    """``sha256:...`` of the dataset's content; raises :class:`CohortError` if it has problems.

    It covers patients.csv and lesions.csv (cells stripped, rows sorted by id, columns by name)
    and each image and mask (geometry, pixel type and voxel bytes), not the truth tables.
    """
    result = scan(root, cohorts, progress=progress, cache_dir=cache_dir, workers=workers)
    if result.fingerprint is None:
        raise CohortError(result.problems, root)
    return result.fingerprint


def load(
    root: Path,
    cohort: str,
    *,
    view_dir: Path,
    progress: bool = False,
    cache_dir: Path | None = None,
    workers: int | None = None,
) -> tuple[Cohort, Outcomes]:
    """The blinded :class:`Cohort` and its :class:`Outcomes`; :class:`CohortError` if invalid.

    The cohort's image/mask paths point into ``view_dir/<cohort>/{images,masks}/``, a folder of
    hard links (copies across file systems) with no table; it is built atomically and reused
    while its files are those of the dataset. Nothing is created when the cohort is invalid.
    """
    root, view_dir = Path(root), Path(view_dir)
    (name,) = _check_cohorts(cohort)
    _check_view_dir(root, view_dir)
    result = scan(root, (name,), progress=progress, cache_dir=cache_dir, workers=workers)
    if result.problems:
        raise CohortError(result.problems, root)
    detail = result._detail[name]
    patients, lesions, outcomes = _frames(detail)
    pids = list(patients.index)
    expected = {
        f"{sub}/{pid}{SUFFIX}": files[pid]
        for sub, files in ((IMAGES, detail.images), (MASKS, detail.masks))
        for pid in pids
    }
    folder = _build_view(view_dir, name, expected)
    cohort_view = Cohort(
        name=name,
        patients=patients,
        lesions=lesions,
        images={pid: folder / IMAGES / f"{pid}{SUFFIX}" for pid in pids},
        masks={pid: folder / MASKS / f"{pid}{SUFFIX}" for pid in pids},
        content_keys={pid: detail.content_key(pid) for pid in pids},
    )
    return cohort_view, outcomes


def load_truth(root: Path, cohort: str) -> Truth | None:
    """The simulator's truth of ``cohort``, or None when the dataset has none.

    Either table may be absent (its part of the :class:`Truth` is then empty); a truth table with
    problems raises :class:`CohortError`.
    """
    root = Path(root)
    (name,) = _check_cohorts(cohort)
    folder = root / name / TRUTH
    lesion_path, patient_path = folder / LESIONS_CSV, folder / PATIENTS_CSV
    if not lesion_path.is_file() and not patient_path.is_file():
        return None
    problems = _Problems()
    _check_truth(root / name, name, None, None, problems)
    if problems:
        raise CohortError(problems, root)

    def frame(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
        if not path.is_file():
            return pd.DataFrame(
                {c: pd.Series(dtype=float) for c in columns[1:]},
                index=pd.Index([], dtype=str, name=columns[0]),
            )
        table = _read_table(path, "", columns, _Problems())
        assert table is not None
        rows = sorted(table.rows, key=lambda r: r[columns[0]])
        return pd.DataFrame(
            {c: [float(r[c]) for r in rows] for c in columns[1:]},
            index=pd.Index([r[columns[0]] for r in rows], dtype=str, name=columns[0]),
        )

    lesions = frame(lesion_path, TRUTH_LESION_COLUMNS)
    patients = frame(patient_path, TRUTH_PATIENT_COLUMNS).rename(
        columns={"lp_os": "os", "lp_pfs": "pfs"}
    )
    return Truth(lesion_p_pd=lesions["p_pd"].rename("p_pd"), patient_lp=patients)


# --------------------------------------------------------------------------------------------
# Loading


def _frames(scan: _CohortScan) -> tuple[pd.DataFrame, pd.DataFrame, Outcomes]:
    pids = sorted(scan.patients)
    lids = sorted(scan.lesions)
    p = [scan.patients[pid] for pid in pids]
    lz = [scan.lesions[lid] for lid in lids]
    pindex = pd.Index(pids, dtype=str, name="patient_id")
    lindex = pd.Index(lids, dtype=str, name="lesion_id")
    nan = float("nan")
    patients = pd.DataFrame(
        {
            "arm": pd.Series([r.arm for r in p], index=pindex, dtype=str),
            "pdl1_tps": pd.Series(
                [nan if r.pdl1_tps is None else r.pdl1_tps for r in p], index=pindex, dtype=float
            ),
            "age": pd.Series(
                [nan if r.age is None else r.age for r in p], index=pindex, dtype=float
            ),
            "sex": pd.Series([r.sex for r in p], index=pindex, dtype=str),
            "ecog": pd.Series(
                [nan if r.ecog is None else float(r.ecog) for r in p], index=pindex, dtype=float
            ),
        },
        index=pindex,
    )
    lesions = pd.DataFrame(
        {
            "patient_id": pd.Series([r.patient_id for r in lz], index=lindex, dtype=str),
            "mask_label": pd.Series([r.mask_label for r in lz], index=lindex, dtype=np.int64),
            "site": pd.Series([r.site for r in lz], index=lindex, dtype=str),
            "irradiated": pd.Series([r.irradiated for r in lz], index=lindex, dtype=np.int64),
        },
        index=lindex,
    )

    def survival(endpoint: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "time": pd.Series(
                    [getattr(r, f"{endpoint}_months") for r in p], index=pindex, dtype=float
                ),
                "event": pd.Series(
                    [bool(getattr(r, f"{endpoint}_event")) for r in p], index=pindex, dtype=bool
                ),
            },
            index=pindex,
        )

    outcomes = Outcomes(
        lesion_pd=pd.Series([r.pd for r in lz], index=lindex, dtype=np.int64, name="pd"),
        os=survival("os"),
        pfs=survival("pfs"),
    )
    return patients, lesions, outcomes


def _check_view_dir(root: Path, view_dir: Path) -> None:
    """The view must not lie where walking up from it reaches a table with labels."""
    view, data = view_dir.resolve(), root.resolve()
    if view == data or view.is_relative_to(data):
        raise ValueError(
            f"view_dir {view_dir} lies inside the data root {root}; a submission "
            "could walk up from an image to the labels"
        )
    for folder in (view, *view.parents):
        for table in (PATIENTS_CSV, LESIONS_CSV):
            if (folder / table).exists():
                raise ValueError(
                    f"view_dir {view_dir} lies under {folder / table}; a submission "
                    "could walk up from an image to it"
                )


def _same_file(source: Path, view: Path) -> bool:
    try:
        if os.path.samefile(source, view):
            return True
        a, b = source.stat(), view.stat()
    except OSError:
        return False
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns  # a copy2 of it


def _view_matches(folder: Path, expected: dict[str, Path]) -> bool:
    if not folder.is_dir() or {p.name for p in folder.iterdir()} != {IMAGES, MASKS}:
        return False
    present = {
        f"{sub}/{p.name}"
        for sub in (IMAGES, MASKS)
        if (folder / sub).is_dir()
        for p in (folder / sub).iterdir()
    }
    if present != set(expected):
        return False
    return all(_same_file(source, folder / rel) for rel, source in expected.items())


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _build_view(view_dir: Path, cohort: str, expected: dict[str, Path]) -> Path:
    """``view_dir/<cohort>`` holding exactly ``expected`` (relative name -> source file)."""
    from filelock import FileLock

    view_dir.mkdir(parents=True, exist_ok=True)
    view_dir = view_dir.resolve()
    folder = view_dir / cohort
    with FileLock(str(view_dir / f".{cohort}.lock")):
        if _view_matches(folder, expected):
            return folder
        tmp = Path(tempfile.mkdtemp(prefix=f".{cohort}.tmp-", dir=view_dir))
        old = view_dir / f".{cohort}.old-{uuid.uuid4().hex}"
        try:
            for sub in (IMAGES, MASKS):
                (tmp / sub).mkdir()
            for rel, source in expected.items():
                _link_or_copy(source, tmp / rel)
            if folder.exists() or folder.is_symlink():
                os.replace(folder, old)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
    return folder
