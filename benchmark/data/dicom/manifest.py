"""The import manifest (one row per lesion) and the clinical table it is joined with.

The manifest says where each patient's CT and segmentation are and which ROI or segment is which
lesion; the clinical table (one row per patient, the layout's patient columns) is what sites
keep apart from imaging. Both are checked here, each bad cell named by file, line and id, before
any DICOM is read.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.api.cohort import COHORTS
from benchmark.data.layout.names import PATIENT_REQUIRED
from benchmark.data.layout.problems import Problems
from benchmark.data.layout.rows import check_patients
from benchmark.data.layout.tables import Table, read_table

MANIFEST_COLUMNS = (
    "cohort",
    "patient_id",
    "ct_series_uid",
    "segmentation",
    "roi",
    "lesion_id",
    "site",
    "irradiated",
    "pd",
)


@dataclass(frozen=True)
class Lesion:
    """One manifest row: the ROI or segment that is this lesion, and its lesion-table values."""

    lesion_id: str
    roi: str
    site: str
    irradiated: str
    pd: str


@dataclass
class PatientPlan:
    """What to import for one patient: its CT series, its segmentation file, its lesions."""

    patient_id: str
    cohort: str
    ct_series_uid: str
    segmentation: Path
    lesions: list[Lesion] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """The checked manifest and clinical table: patients in manifest order, clinical rows."""

    patients: list[PatientPlan]
    clinical_columns: list[str]
    clinical: dict[str, dict[str, str]]

    @property
    def series_uids(self) -> set[str]:
        return {p.ct_series_uid for p in self.patients}


def read_plan(manifest: Path, clinical: Path, src: Path) -> tuple[Plan | None, Problems]:
    """Read and check both tables; ``(None, problems)`` when anything is wrong."""
    problems = Problems()
    table = read_table(Path(manifest), Path(manifest).name, MANIFEST_COLUMNS, problems)
    clinical_table = read_table(Path(clinical), Path(clinical).name, PATIENT_REQUIRED, problems)
    if table is None or clinical_table is None or problems:
        return None, problems
    patients = _check_manifest(table, Path(src), problems)
    clinical_rows = _check_clinical(clinical_table, patients, problems)
    if problems:
        return None, problems
    columns = [c for c in clinical_table.columns if c and c != "cohort"]
    return Plan(list(patients.values()), columns, clinical_rows), problems


def _check_manifest(table: Table, src: Path, problems: Problems) -> dict[str, PatientPlan]:
    rel = table.file
    patients: dict[str, PatientPlan] = {}
    first_line: dict[str, int] = {}
    lesion_lines: dict[str, int] = {}
    roi_lines: dict[tuple[str, str], int] = {}
    if not table.rows:
        problems.add(rel, "no rows; expected one row per lesion")
    for row, line in zip(table.rows, table.lines, strict=True):
        pid, lid = row["patient_id"], row["lesion_id"]

        def bad(column: str, message: str, line: int = line, lid: str = lid) -> None:
            problems.add(rel, message, line, column, lid or None)

        for column in MANIFEST_COLUMNS[:6]:
            if not row[column]:
                bad(column, f"empty {column}; expected a value in every row")
        if not pid or not lid:
            continue
        if row["cohort"] and row["cohort"] not in COHORTS:
            bad("cohort", f"cohort {row['cohort']!r} is not one of {', '.join(COHORTS)}")
        for column in ("irradiated", "pd"):
            if row[column] not in ("0", "1"):
                bad(column, f"{column} {row[column]!r} is not 0 or 1; expected 0 (no) or 1 (yes)")
        if lid in lesion_lines:
            bad("lesion_id", f"lesion_id {lid!r} also on line {lesion_lines[lid]}; expected once")
        lesion_lines.setdefault(lid, line)
        if (pid, row["roi"]) in roi_lines:
            bad(
                "roi",
                f"roi {row['roi']!r} of patient {pid} also on line {roi_lines[(pid, row['roi'])]}; "
                "expected one lesion per ROI or segment",
            )
        roi_lines.setdefault((pid, row["roi"]), line)
        seg = Path(row["segmentation"])
        seg = seg if seg.is_absolute() else src / seg
        if pid not in patients:
            first_line[pid] = line
            patients[pid] = PatientPlan(pid, row["cohort"], row["ct_series_uid"], seg)
            if row["segmentation"] and not seg.is_file():
                bad("segmentation", f"no file {seg}; expected the patient's RTSTRUCT or SEG file")
        plan = patients[pid]
        for column, mine, theirs in (
            ("cohort", plan.cohort, row["cohort"]),
            ("ct_series_uid", plan.ct_series_uid, row["ct_series_uid"]),
            ("segmentation", str(plan.segmentation), str(seg)),
        ):
            if theirs != mine:
                bad(
                    column,
                    f"{column} {row[column]!r} of patient {pid} differs from line "
                    f"{first_line[pid]}; expected one {column} per patient",
                )
        plan.lesions.append(Lesion(lid, row["roi"], row["site"], row["irradiated"], row["pd"]))
    return patients


def _check_clinical(
    table: Table, patients: Mapping[str, PatientPlan], problems: Problems
) -> dict[str, dict[str, str]]:
    check_patients(table, problems)
    rows = {}
    for row in table.rows:
        rows.setdefault(row.get("patient_id", ""), row)
    missing = [pid for pid in patients if pid not in rows]
    if missing:
        problems.add(
            table.file,
            f"no row for {len(missing)} manifest patient{'' if len(missing) == 1 else 's'}: "
            f"{', '.join(missing[:8])}; expected one row per patient of the manifest",
        )
    return {pid: rows[pid] for pid in patients if pid in rows}


def write_csv(path: Path, columns: Iterable[str], rows: Iterable[Mapping[str, object]]) -> None:
    """A plain CSV table (the layout's, the manifest's): header, then one line per row."""
    columns = list(columns)
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})


__all__ = ["MANIFEST_COLUMNS", "Lesion", "PatientPlan", "Plan", "read_plan", "write_csv"]
