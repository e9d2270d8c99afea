"""One pass over a dataset: tables, file lists, every file read, cross-checks, fingerprint.

Validation and the fingerprint share the pass, so each voxel is read once. (Not ``scan.py``:
the module would shadow :func:`scan` on the package.)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.api.cohort import COHORTS
from benchmark.data.layout.images import FileCache, FileInfo, Unreadable, geometry_mismatches
from benchmark.data.layout.names import (
    IMAGES,
    LESION_REQUIRED,
    LESIONS_CSV,
    MASKS,
    PATIENT_REQUIRED,
    PATIENTS_CSV,
    SUFFIX,
)
from benchmark.data.layout.problems import Problem, Problems, some_of
from benchmark.data.layout.rows import (
    LesionRecord,
    PatientRecord,
    check_lesions,
    check_patients,
    check_truth,
)
from benchmark.data.layout.tables import Table, canonical_table, read_table

FINGERPRINT_VERSION = "nsclc-io-bench/dataset/v1"


@dataclass
class CohortScan:
    """What the pass found in one cohort: tables, checked records, files; what :func:`load` uses."""

    name: str
    folder: Path
    patients_table: Table | None = None
    lesions_table: Table | None = None
    patients: dict[str, PatientRecord] = field(default_factory=dict)
    lesions: dict[str, LesionRecord] = field(default_factory=dict)
    images: dict[str, Path] = field(default_factory=dict)
    masks: dict[str, Path] = field(default_factory=dict)
    files: dict[Path, FileInfo] = field(default_factory=dict)
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
    # cohort -> what the pass found there, which loading builds the cohort from
    detail: dict[str, CohortScan] = field(repr=False, compare=False, default_factory=dict)


def check_cohorts(cohorts: Sequence[str] | str) -> tuple[str, ...]:
    """The named cohorts in canonical order; ValueError for an unknown one or none."""
    names = (cohorts,) if isinstance(cohorts, str) else tuple(cohorts)
    unknown = [n for n in names if n not in COHORTS]
    if unknown or not names:
        raise ValueError(f"unknown cohorts {unknown}; expected some of {', '.join(COHORTS)}")
    # canonical order, so that the fingerprint does not depend on how the caller lists them
    return tuple(n for n in COHORTS if n in names)


def _list_files(
    folder: Path, rel: str, what: str, patients: dict[str, PatientRecord] | None, problems: Problems
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


def _scan_tables(root: Path, cohort: str, problems: Problems) -> CohortScan:
    folder = root / cohort
    scan = CohortScan(cohort, folder)
    if not folder.is_dir():
        problems.add(
            f"{cohort}/",
            f"missing cohort folder; expected {root / cohort} with "
            f"{PATIENTS_CSV}, {LESIONS_CSV}, {IMAGES}/ and {MASKS}/",
        )
        return scan
    before = len(problems)
    scan.patients_table = read_table(
        folder / PATIENTS_CSV, f"{cohort}/{PATIENTS_CSV}", PATIENT_REQUIRED, problems
    )
    patients: dict[str, PatientRecord] | None = None  # None: the patient ids are not known
    if scan.patients_table is not None:
        scan.patients = check_patients(scan.patients_table, problems)
        if scan.patients_table.has("patient_id"):
            patients = scan.patients
    patients_clean, before = len(problems) == before, len(problems)
    scan.lesions_table = read_table(
        folder / LESIONS_CSV, f"{cohort}/{LESIONS_CSV}", LESION_REQUIRED, problems
    )
    if scan.lesions_table is not None:
        scan.lesions, scan.unlabelled, scan.claimed = check_lesions(
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
    check_truth(
        folder,
        cohort,
        set(scan.lesions) if lesions_clean else None,
        set(scan.patients) if patients_clean else None,
        problems,
    )
    return scan


def _check_files(scan: CohortScan, problems: Problems) -> None:
    """Per patient: image/mask geometry agree, and mask labels match the lesion rows."""
    cohort = scan.name
    by_patient: dict[str, list[tuple[str, LesionRecord]]] = {}
    for lid, lesion in scan.lesions.items():
        if lesion.patient_id is not None:
            by_patient.setdefault(lesion.patient_id, []).append((lid, lesion))
    for pid in sorted(set(scan.images) | set(scan.masks)):
        image = scan.files.get(scan.images.get(pid))  # type: ignore[arg-type]
        mask = scan.files.get(scan.masks.get(pid))  # type: ignore[arg-type]
        image_rel, mask_rel = f"{cohort}/{IMAGES}/{pid}{SUFFIX}", f"{cohort}/{MASKS}/{pid}{SUFFIX}"
        if image is not None and mask is not None and _is_3d(image) and _is_3d(mask):
            for message in geometry_mismatches(image, mask, image_rel):
                problems.add(mask_rel, message, id=pid)
        if mask is None or mask.labels is None:
            continue
        present = set(mask.labels)
        rows = by_patient.get(pid, [])
        _check_sizes(cohort, mask, mask_rel, rows, problems)
        for lid, lesion in rows:
            if lesion.mask_label is not None and lesion.mask_label not in present:
                problems.add(
                    f"{cohort}/{LESIONS_CSV}",
                    f"mask_label {lesion.mask_label} is not "
                    f"in the mask {mask_rel} (labels present: "
                    f"{some_of(sorted(present)) or 'none'})",
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
                f"label{'' if len(orphans) == 1 else 's'} {some_of(orphans)} "
                f"in the mask {'has' if len(orphans) == 1 else 'have'} no row in "
                f"{cohort}/{LESIONS_CSV}; expected one lesion row per label",
                id=pid,
            )


def _is_3d(info: FileInfo) -> bool:
    """Whether a file is a 3-D volume (one that is not is refused as such: no grid to compare)."""
    return info.geometry["dimension"] == 3


def _check_sizes(
    cohort: str,
    mask: FileInfo,
    mask_rel: str,
    rows: list[tuple[str, LesionRecord]],
    problems: Problems,
) -> None:
    """Each lesion row whose label is too small for radiomics, on its row of lesions.csv."""
    if not mask.sizes:
        return
    voxel_mm3 = math.prod(mask.geometry["spacing"])
    for lid, lesion in rows:
        size = mask.sizes.get(lesion.mask_label)  # type: ignore[arg-type]
        issue = None if size is None else size.issue(size.voxels * voxel_mm3)
        if issue is not None:
            problems.add(
                f"{cohort}/{LESIONS_CSV}",
                f"mask_label {lesion.mask_label} in {mask_rel} {issue}",
                lesion.line,
                "mask_label",
                lid,
            )


def _check_duplicates(scan: CohortScan, problems: Problems) -> None:
    """Two patients of a cohort with the same image (voxels and geometry): one scan under two ids
    would sit in a training fold and its test fold at once."""
    first: dict[str, str] = {}
    for pid in sorted(scan.images):
        info = scan.files.get(scan.images[pid])
        if info is None:
            continue
        other = first.setdefault(info.key, pid)
        if other != pid:
            problems.add(
                f"{scan.name}/{IMAGES}/{pid}{SUFFIX}",
                f"image is identical to {scan.name}/{IMAGES}/{other}{SUFFIX} (patient {other}): "
                "one scan under two patient ids; expected each patient's own CT",
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
    names = check_cohorts(cohorts)
    problems = Problems()
    if not root.is_dir():
        problems.add(
            ".",
            f"data root {root} is not a folder; expected one folder per cohort "
            f"({', '.join(names)})",
        )
        return Scan(root, names, list(problems), None, {})

    scans: dict[str, CohortScan] = {}
    per_cohort: dict[str, Problems] = {}
    jobs: list[tuple[str, str, Path, bool]] = []  # cohort, pid, path, is_mask
    for name in names:
        per_cohort[name] = Problems()
        scans[name] = _scan_tables(root, name, per_cohort[name])
        for pid in sorted(set(scans[name].images) | set(scans[name].masks)):
            for source, is_mask in ((scans[name].images, False), (scans[name].masks, True)):
                if pid in source:
                    jobs.append((name, pid, source[pid], is_mask))

    cache = FileCache(cache_dir)

    def read(job: tuple[str, str, Path, bool]) -> FileInfo | str:
        try:
            return cache.read(job[2], job[3])
        except Unreadable as err:
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
        _check_duplicates(scans[name], per_cohort[name])
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


def _fingerprint(scans: dict[str, CohortScan]) -> str:
    content = {"version": FINGERPRINT_VERSION, "cohorts": []}
    for name, scan in scans.items():
        assert scan.patients_table is not None and scan.lesions_table is not None
        tables = {
            PATIENTS_CSV: canonical_table(scan.patients_table, "patient_id"),
            LESIONS_CSV: canonical_table(scan.lesions_table, "lesion_id"),
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
