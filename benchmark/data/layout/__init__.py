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

One concept per module: :mod:`.names` (files, folders, required columns), :mod:`.problems`,
:mod:`.tables` (CSV reading), :mod:`.rows` (row checks), :mod:`.images` (NIfTI reading, its
per-file cache, image/mask geometry), :mod:`.header` (header fields the readers disagree on),
:mod:`.values` (non-finite voxels, HU range, spacing), :mod:`.lesions` (lesions too small for
radiomics), :mod:`.scanning` (the one pass, duplicate scans and the fingerprint),
:mod:`.frames` (records to pandas), :mod:`.views` (the folder of links); this module holds the
public API. Each module's public names are what the others use; its ``_names`` stay inside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from benchmark.api.cohort import COHORTS, Cohort, Outcomes, Truth
from benchmark.data.layout.frames import to_frames
from benchmark.data.layout.images import CACHE_VERSION, GEOMETRY_RTOL
from benchmark.data.layout.names import (
    IMAGES,
    LESION_REQUIRED,
    LESIONS_CSV,
    MASKS,
    PATIENT_REQUIRED,
    PATIENTS_CSV,
    SUFFIX,
    TRUTH,
    TRUTH_LESION_COLUMNS,
    TRUTH_PATIENT_COLUMNS,
)
from benchmark.data.layout.problems import CohortError, Problem, Problems
from benchmark.data.layout.rows import check_truth
from benchmark.data.layout.scanning import FINGERPRINT_VERSION, Scan, check_cohorts, scan
from benchmark.data.layout.tables import read_table
from benchmark.data.layout.views import build_view, check_view_dir

__all__ = [
    "CACHE_VERSION",
    "FINGERPRINT_VERSION",
    "GEOMETRY_RTOL",
    "IMAGES",
    "LESIONS_CSV",
    "LESION_REQUIRED",
    "MASKS",
    "PATIENTS_CSV",
    "PATIENT_REQUIRED",
    "SUFFIX",
    "TRUTH",
    "TRUTH_LESION_COLUMNS",
    "TRUTH_PATIENT_COLUMNS",
    "CohortError",
    "Problem",
    "Scan",
    "fingerprint",
    "load",
    "load_truth",
    "scan",
    "validate",
]


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
    (name,) = check_cohorts(cohort)
    check_view_dir(root, view_dir)
    result = scan(root, (name,), progress=progress, cache_dir=cache_dir, workers=workers)
    if result.problems:
        raise CohortError(result.problems, root)
    detail = result.detail[name]
    patients, lesions, outcomes = to_frames(detail)
    pids = list(patients.index)
    expected = {
        f"{sub}/{pid}{SUFFIX}": files[pid]
        for sub, files in ((IMAGES, detail.images), (MASKS, detail.masks))
        for pid in pids
    }
    folder = build_view(view_dir, name, expected)
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
    (name,) = check_cohorts(cohort)
    folder = root / name / TRUTH
    lesion_path, patient_path = folder / LESIONS_CSV, folder / PATIENTS_CSV
    if not lesion_path.is_file() and not patient_path.is_file():
        return None
    problems = Problems()
    check_truth(root / name, name, None, None, problems)
    if problems:
        raise CohortError(problems, root)

    def frame(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
        if not path.is_file():
            return pd.DataFrame(
                {c: pd.Series(dtype=float) for c in columns[1:]},
                index=pd.Index([], dtype=str, name=columns[0]),
            )
        table = read_table(path, "", columns, Problems())
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
