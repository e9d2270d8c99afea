"""Shared by the DICOM tests: a small layout cut from the tiny cohorts, its export, and edits."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from benchmark.data.dicom.exporter import dice


def cut_layout(src: Path, dst: Path, cohort: str, patients: Iterable[str]) -> Path:
    """``dst/<cohort>`` holding only ``patients`` of ``src/<cohort>`` (tables and images)."""
    keep = set(patients)
    for sub in ("images", "masks"):
        (dst / cohort / sub).mkdir(parents=True)
        for pid in keep:
            name = f"{pid}.nii.gz"
            shutil.copy(src / cohort / sub / name, dst / cohort / sub / name)
    for table in ("patients.csv", "lesions.csv"):
        rows = read_rows(src / cohort / table)
        write_rows(dst / cohort / table, [r for r in rows if r["patient_id"] in keep])
    return dst


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def only_patient(manifest: Path, patient: str, out: Path) -> Path:
    """A copy of ``manifest`` with the rows of one patient."""
    write_rows(out, [r for r in read_rows(manifest) if r["patient_id"] == patient])
    return out


def edit(path: Path, change: Callable[[pydicom.Dataset], None]) -> None:
    """Rewrite one DICOM file after ``change``."""
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path)


def edit_series(folder: Path, change: Callable[[pydicom.Dataset], None]) -> None:
    for path in sorted(folder.glob("*.dcm")):
        edit(path, change)


def dice_per_lesion(original: Path, imported: Path, cohort: str) -> dict[str, float]:
    """Dice of each lesion's mask, original against imported (labels by lesion_id)."""
    scores = {}
    before = {r["lesion_id"]: r for r in read_rows(original / cohort / "lesions.csv")}
    after = {r["lesion_id"]: r for r in read_rows(imported / cohort / "lesions.csv")}
    masks: dict[tuple[Path, str], np.ndarray] = {}

    def mask(root: Path, pid: str) -> np.ndarray:
        if (root, pid) not in masks:
            image = sitk.ReadImage(str(root / cohort / "masks" / f"{pid}.nii.gz"))
            masks[(root, pid)] = sitk.GetArrayFromImage(image)
        return masks[(root, pid)]

    for lid, row in before.items():
        a = mask(original, row["patient_id"]) == int(row["mask_label"])
        b = mask(imported, row["patient_id"]) == int(after[lid]["mask_label"])
        scores[lid] = dice(a, b)
    return scores
