"""``export-dicom``: a layout cohort as DICOM (CT series, SEG, RTSTRUCT) with import manifests.

For testing a site's DICOM pipeline on data whose truth is known (the simulator's), and the
importer itself: importing the export gives back the CT voxels and geometry and the SEG masks
exactly; the RTSTRUCT masks as well as polygons traced on voxel edges allow.

Written under OUT::

    <cohort>/<patient>/CT/CT0001.dcm ...   one single-frame CT image per slice
    <cohort>/<patient>/SEG.dcm              one binary segment per lesion (label = lesion_id)
    <cohort>/<patient>/RTSTRUCT.dcm         one ROI per lesion (ROIName = lesion_id)
    manifest_seg.csv, manifest_rtstruct.csv the import manifests, one per segmentation kind
    clinical.csv                            every patient's row of patients.csv
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from tqdm.auto import tqdm

from benchmark.api.cohort import COHORTS
from benchmark.data.dicom.grid import Grid
from benchmark.data.dicom.manifest import MANIFEST_COLUMNS, write_csv
from benchmark.data.dicom.rtstruct import write_rtstruct
from benchmark.data.dicom.seg import write_seg
from benchmark.data.dicom.series import CtVolume, SeriesIds, write_ct
from benchmark.data.layout.names import IMAGES, LESIONS_CSV, MASKS, PATIENTS_CSV, SUFFIX
from benchmark.utils.atomic import check_empty, staged

MANIFEST_SEG = "manifest_seg.csv"
MANIFEST_RTSTRUCT = "manifest_rtstruct.csv"
CLINICAL_CSV = "clinical.csv"


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote: patients and lesions per cohort."""

    out: Path
    counts: dict[str, tuple[int, int]]


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), [
            {k: (v or "").strip() for k, v in row.items()} for row in reader
        ]


def _export_patient(
    root: Path, cohort: str, pid: str, lesions: list[dict[str, str]], folder: Path
) -> list[dict[str, str]]:
    from pydicom.uid import generate_uid

    image = sitk.ReadImage(str(root / cohort / IMAGES / f"{pid}{SUFFIX}"))
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(root / cohort / MASKS / f"{pid}{SUFFIX}")))
    ids = SeriesIds(generate_uid(), generate_uid(), generate_uid())
    datasets = write_ct(image, folder / "CT", pid, ids, description=f"{cohort} {pid}")
    grid = Grid.of(image)
    ct = CtVolume(image, grid, ids.frame_of_reference, ids.series, ())
    masks = [(row["lesion_id"], labels == int(row["mask_label"])) for row in lesions]
    rows = []
    if masks:
        write_seg(folder / "SEG.dcm", datasets, masks, ids)
        write_rtstruct(folder / "RTSTRUCT.dcm", datasets, ct, masks, ids)
    for row in lesions:
        rows.append(
            {
                "cohort": cohort,
                "patient_id": pid,
                "ct_series_uid": ids.series,
                "roi": row["lesion_id"],
                "lesion_id": row["lesion_id"],
                "site": row["site"],
                "irradiated": row["irradiated"],
                "pd": row["pd"],
            }
        )
    return rows


def export_dicom(
    root: Path, out: Path, *, cohorts: Sequence[str] | None = None, progress: bool = False
) -> ExportReport:
    """Write the layout cohorts under ``root`` (default: those present) as DICOM under ``out``.

    ``out`` must not exist or be empty; it is written in a temporary sibling and renamed at the
    end, so a failed export leaves nothing.
    """
    root, out = Path(root), Path(out)
    check_empty(out)
    names = [c for c in (cohorts or COHORTS) if (root / c / PATIENTS_CSV).is_file()]
    if not names:
        raise FileNotFoundError(f"no cohort ({', '.join(cohorts or COHORTS)}) under {root}")
    counts: dict[str, tuple[int, int]] = {}
    manifest: list[dict[str, str]] = []
    clinical: list[dict[str, str]] = []
    clinical_columns: list[str] = []
    jobs = []
    for cohort in names:
        columns, patients = _rows(root / cohort / PATIENTS_CSV)
        _, lesions = _rows(root / cohort / LESIONS_CSV)
        clinical_columns += [c for c in columns if c not in clinical_columns]
        clinical += patients
        for patient in patients:
            pid = patient["patient_id"]
            mine = [r for r in lesions if r["patient_id"] == pid]
            jobs.append((cohort, pid, sorted(mine, key=lambda r: int(r["mask_label"]))))
        counts[cohort] = (len(patients), len(lesions))
    with staged(out) as tmp:
        for cohort, pid, mine in tqdm(jobs, desc="export", unit="patient", disable=not progress):
            manifest += _export_patient(root, cohort, pid, mine, tmp / cohort / pid)
        for name, kind in ((MANIFEST_SEG, "SEG.dcm"), (MANIFEST_RTSTRUCT, "RTSTRUCT.dcm")):
            rows = [
                {**r, "segmentation": f"{r['cohort']}/{r['patient_id']}/{kind}"} for r in manifest
            ]
            write_csv(tmp / name, MANIFEST_COLUMNS, rows)
        write_csv(tmp / CLINICAL_CSV, clinical_columns, clinical)
    return ExportReport(out, counts)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two boolean masks (1.0 for two empty ones)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.count_nonzero(a & b)) / total


__all__ = [
    "CLINICAL_CSV",
    "MANIFEST_RTSTRUCT",
    "MANIFEST_SEG",
    "ExportReport",
    "dice",
    "export_dicom",
]
