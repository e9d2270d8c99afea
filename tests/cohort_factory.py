"""Build a small valid dataset in the on-disk cohort layout, and edit it, for tests.

``make_dataset(root)`` writes all three cohorts (4/3/3 patients, 1-3 spherical lesions each,
20x20x10 CT volumes) with truth tables, and returns what it wrote, so tests can compare loaded
values against it. The CSV helpers address rows by editor line number (header = line 1).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from benchmark.api.cohort import COHORTS

SIZE = (20, 20, 10)  # x, y, z (SimpleITK order)
SPACING = {"pembro_rt": (0.8, 0.8, 2.5), "nivorad": (0.7, 0.7, 3.0), "mdacc": (0.9, 0.9, 2.0)}
PREFIX = {"pembro_rt": "PR", "nivorad": "NV", "mdacc": "MD"}
N_PATIENTS = {"pembro_rt": 4, "nivorad": 3, "mdacc": 3}
CENTRES = ((5, 5, 3), (14, 6, 6), (9, 14, 5))  # voxel (x, y, z); spheres never touch
SITES = ("lung", "lymph_node", "liver")

PATIENT_HEADER = [
    "patient_id",
    "arm",
    "pdl1_tps",
    "age",
    "sex",
    "ecog",
    "os_months",
    "os_event",
    "pfs_months",
    "pfs_event",
]
LESION_HEADER = ["lesion_id", "patient_id", "mask_label", "site", "irradiated", "pd"]


@dataclass
class LesionSpec:
    lesion_id: str
    patient_id: str
    mask_label: int
    site: str
    irradiated: int
    pd: int
    p_pd: float
    centre: tuple[int, int, int]


@dataclass
class PatientSpec:
    patient_id: str
    arm: str
    pdl1_tps: float | None
    age: float
    sex: str
    ecog: int | None
    os_months: float
    os_event: int
    pfs_months: float
    pfs_event: int
    lp_os: float
    lp_pfs: float
    lesions: list[LesionSpec] = field(default_factory=list)


def cohort_spec(cohort: str, n_patients: int | None = None, seed: int = 0) -> list[PatientSpec]:
    """Deterministic patients of one cohort; patient i (from 1) has ((i - 1) % 3) + 1 lesions."""
    rng = np.random.default_rng([seed, COHORTS.index(cohort)])
    n = N_PATIENTS[cohort] if n_patients is None else n_patients
    patients = []
    for i in range(1, n + 1):
        pid = f"{PREFIX[cohort]}{i:03d}"
        os_months = round(float(rng.uniform(3, 30)), 2)
        pfs_months = round(os_months * float(rng.uniform(0.2, 1.0)), 2)
        patient = PatientSpec(
            patient_id=pid,
            arm="io+sabr" if i % 2 == 0 else "io",
            pdl1_tps=None if i == 2 else float(rng.integers(0, 101)),
            age=float(rng.integers(45, 85)),
            sex="F" if i % 2 else "M",
            ecog=None if i == 3 else int(rng.integers(0, 3)),
            os_months=os_months,
            os_event=int(i % 2),
            pfs_months=pfs_months,
            pfs_event=1,
            lp_os=round(float(rng.normal()), 4),
            lp_pfs=round(float(rng.normal()), 4),
        )
        for k in range(1, (i - 1) % 3 + 2):
            patient.lesions.append(
                LesionSpec(
                    lesion_id=f"{pid}-L{k}",
                    patient_id=pid,
                    mask_label=k,
                    site=SITES[k - 1],
                    irradiated=int(k == 1 and patient.arm == "io+sabr"),
                    pd=int(rng.integers(0, 2)),
                    p_pd=round(float(rng.uniform(0.05, 0.95)), 4),
                    centre=CENTRES[k - 1],
                )
            )
        patients.append(patient)
    return patients


def volumes(patient: PatientSpec, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """CT (int16, HU) and instance mask (uint8) as (z, y, x) arrays."""
    rng = np.random.default_rng([seed, int(patient.patient_id[-3:]), ord(patient.patient_id[0])])
    z, y, x = np.mgrid[: SIZE[2], : SIZE[1], : SIZE[0]]
    ct = -800 + rng.normal(0, 20, (SIZE[2], SIZE[1], SIZE[0]))
    mask = np.zeros(ct.shape, np.uint8)
    for lesion in patient.lesions:
        cx, cy, cz = lesion.centre
        inside = ((x - cx) / 2.5) ** 2 + ((y - cy) / 2.5) ** 2 + ((z - cz) / 1.6) ** 2 <= 1
        mask[inside] = lesion.mask_label
        ct[inside] = 40 + rng.normal(0, 10, int(inside.sum()))
    return ct.round().astype(np.int16), mask


def write_volume(
    path: Path,
    array: np.ndarray,
    spacing: tuple[float, float, float],
    origin: tuple[float, float, float] | None = None,
    direction: tuple[float, ...] | None = None,
) -> None:
    """Write a (z, y, x) array as NIfTI with the given geometry."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(
        origin
        if origin is not None
        else tuple(-s * n / 2 for s, n in zip(spacing, SIZE, strict=True))
    )
    if direction is not None:
        image.SetDirection(direction)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), useCompression=True)


def write_cohort(root: Path, cohort: str, patients: list[PatientSpec], truth: bool = True) -> Path:
    folder = root / cohort
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)

    def blank(value: object) -> str:
        return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    write_csv(
        folder / "patients.csv",
        [PATIENT_HEADER]
        + [
            [
                p.patient_id,
                p.arm,
                blank(p.pdl1_tps),
                blank(p.age),
                p.sex,
                blank(p.ecog),
                blank(p.os_months),
                str(p.os_event),
                blank(p.pfs_months),
                str(p.pfs_event),
            ]
            for p in patients
        ],
    )
    lesions = [lesion for p in patients for lesion in p.lesions]
    write_csv(
        folder / "lesions.csv",
        [LESION_HEADER]
        + [
            [x.lesion_id, x.patient_id, str(x.mask_label), x.site, str(x.irradiated), str(x.pd)]
            for x in lesions
        ],
    )
    for patient in patients:
        ct, mask = volumes(patient)
        write_volume(folder / "images" / f"{patient.patient_id}.nii.gz", ct, SPACING[cohort])
        write_volume(folder / "masks" / f"{patient.patient_id}.nii.gz", mask, SPACING[cohort])
    if truth:
        write_csv(
            folder / "truth" / "lesions.csv",
            [["lesion_id", "p_pd"]] + [[x.lesion_id, f"{x.p_pd:g}"] for x in lesions],
        )
        write_csv(
            folder / "truth" / "patients.csv",
            [["patient_id", "lp_os", "lp_pfs"]]
            + [[p.patient_id, f"{p.lp_os:g}", f"{p.lp_pfs:g}"] for p in patients],
        )
    return folder


def make_dataset(
    root: Path, cohorts: tuple[str, ...] = COHORTS, seed: int = 0, truth: bool = True
) -> dict[str, list[PatientSpec]]:
    """Write a valid dataset under ``root``; return the patients written, by cohort."""
    specs = {}
    for cohort in cohorts:
        specs[cohort] = cohort_spec(cohort, seed=seed)
        write_cohort(root, cohort, specs[cohort], truth=truth)
    return specs


# ---- editing helpers (line numbers as an editor shows them: header = 1) ----


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def write_csv(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def set_cell(path: Path, line: int, column: str, value: str) -> None:
    rows = read_csv(path)
    rows[line - 1][rows[0].index(column)] = value
    write_csv(path, rows)


def get_cell(path: Path, line: int, column: str) -> str:
    rows = read_csv(path)
    return rows[line - 1][rows[0].index(column)]


def drop_column(path: Path, column: str) -> None:
    rows = read_csv(path)
    index = rows[0].index(column)
    write_csv(path, [row[:index] + row[index + 1 :] for row in rows])


def delete_row(path: Path, line: int) -> None:
    rows = read_csv(path)
    del rows[line - 1]
    write_csv(path, rows)


def append_row(path: Path, row: list[str]) -> None:
    write_csv(path, read_csv(path) + [row])


def rewrite_volume(path: Path, edit=None, **geometry) -> None:  # noqa: ANN001
    """Rewrite a NIfTI file: ``edit(array) -> array`` on its voxels, and/or new geometry
    (``spacing=``, ``origin=``, ``direction=``)."""
    image = sitk.ReadImage(str(path))
    array = sitk.GetArrayFromImage(image)
    if edit is not None:
        array = edit(array)
    write_volume(
        path,
        array,
        geometry.get("spacing", image.GetSpacing()),
        geometry.get("origin", image.GetOrigin()),
        geometry.get("direction", image.GetDirection()),
    )


# NIfTI-1 header fields (byte offset, struct format) that a broken converter gets wrong.
NIFTI1_FIELDS = {
    "dim": (40, "8h"),
    "datatype": (70, "h"),
    "bitpix": (72, "h"),
    "pixdim": (76, "8f"),
    "scl_slope": (112, "f"),
    "scl_inter": (116, "f"),
    "xyzt_units": (123, "B"),
    "qform_code": (252, "h"),
    "sform_code": (254, "h"),
    "quatern": (256, "3f"),
    "qoffset": (268, "3f"),
    "srow_x": (280, "4f"),
    "srow_y": (296, "4f"),
    "srow_z": (312, "4f"),
}


def header_fields(path: Path) -> dict[str, tuple]:
    """The NIfTI-1 header fields of a little-endian ``.nii.gz`` (as SimpleITK writes them here)."""
    import gzip
    import struct

    data = gzip.decompress(path.read_bytes())
    return {k: struct.unpack_from("<" + f, data, o) for k, (o, f) in NIFTI1_FIELDS.items()}


def patch_header(path: Path, **fields: object) -> None:
    """Overwrite NIfTI-1 header fields of a ``.nii.gz`` in place, voxels untouched."""
    import gzip
    import struct

    data = bytearray(gzip.decompress(path.read_bytes()))
    for name, value in fields.items():
        offset, fmt = NIFTI1_FIELDS[name]
        values = value if isinstance(value, tuple | list) else (value,)
        struct.pack_into("<" + fmt, data, offset, *values)
    path.write_bytes(gzip.compress(bytes(data)))


@dataclass
class Case:
    """One way to break a dataset, and the problem the validator must report for it."""

    mutate: Callable[[Path], None]
    file: str
    text: str
    row: int | None = None
    column: str | None = None
    id: str | None = None
    count: int = 1  # every problem this one break gives (no noisy cascades)


def reported(problems: list, case: Case) -> Any:
    """The problem among ``problems`` that names ``case``'s file, row, column, id and text;
    AssertionError listing them all when none does, or when their count is not ``case.count``."""
    matching = [
        p
        for p in problems
        if p.file == case.file
        and case.text in p.message
        and (p.row, p.column, p.id) == (case.row, case.column, case.id)
    ]
    assert matching, f"no problem like {case} in:\n" + "\n".join(map(str, problems))
    assert len(problems) == case.count, "\n".join(map(str, problems))
    return matching[0]
