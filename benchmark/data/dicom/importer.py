"""``import-dicom``: a site's DICOM and clinical table into the cohort layout, all or nothing.

Every patient is read and checked (CT series, segmentation, lesions) before anything is moved
into place: the layout is built in a temporary sibling of OUT, validated as ``validate`` would,
and renamed to OUT only when every patient passed. A failed import leaves no OUT and lists every
problem found, one per patient at most (the first thing wrong with it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from tqdm.auto import tqdm

from benchmark.data.dicom.errors import DicomImportError, DicomProblem
from benchmark.data.dicom.manifest import PatientPlan, Plan, read_plan, write_csv
from benchmark.data.dicom.rtstruct import RT_STRUCTURE_SET, read_rtstruct
from benchmark.data.dicom.seg import read_seg
from benchmark.data.dicom.series import CtVolume, SeriesFiles, index_series, read_ct
from benchmark.data.layout.names import (
    IMAGES,
    LESION_REQUIRED,
    LESIONS_CSV,
    MASKS,
    PATIENTS_CSV,
    SUFFIX,
)
from benchmark.utils.atomic import check_empty, staged

SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


@dataclass(frozen=True)
class ImportReport:
    """What an import wrote: patients and lesions per cohort, and the dataset fingerprint."""

    out: Path
    counts: dict[str, tuple[int, int]]
    fingerprint: str


def _segmentation_kind(patient: str, path: Path) -> str:
    import pydicom

    try:
        header = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:
        raise DicomProblem(
            patient, path, f"cannot read as DICOM ({type(exc).__name__}: {exc})"
        ) from None
    sop_class = str(header.get("SOPClassUID", ""))
    if sop_class == RT_STRUCTURE_SET:
        return "RTSTRUCT"
    if sop_class == SEG_STORAGE:
        return "SEG"
    raise DicomProblem(
        patient,
        path,
        f"a {header.get('Modality', '(no modality)')} object (SOP class {sop_class}); expected "
        "an RTSTRUCT or a SEG",
    )


def _overlaps(patient: PatientPlan, masks: dict[str, np.ndarray], path: Path) -> None:
    names = [lesion.roi for lesion in patient.lesions]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = int(np.count_nonzero(masks[a] & masks[b]))
            if shared:
                lesion_a, lesion_b = patient.lesions[i], patient.lesions[names.index(b)]
                raise DicomProblem(
                    patient.patient_id,
                    path,
                    f"lesions {lesion_a.lesion_id} (roi {a!r}) and {lesion_b.lesion_id} (roi "
                    f"{b!r}) overlap in {shared} voxels; expected disjoint lesions (one label per "
                    "voxel)",
                )


def _import_patient(patient: PatientPlan, series: SeriesFiles | None, cohort_dir: Path) -> CtVolume:
    pid = patient.patient_id
    if series is None:
        raise DicomProblem(
            pid,
            None,
            f"no DICOM file under the source folder has SeriesInstanceUID "
            f"{patient.ct_series_uid}; expected the CT series named in the manifest",
        )
    ct = read_ct(pid, series)
    path = patient.segmentation
    kind = _segmentation_kind(pid, path)
    rois = [lesion.roi for lesion in patient.lesions]
    reader = read_rtstruct if kind == "RTSTRUCT" else read_seg
    masks = reader(pid, path, ct, rois)
    for lesion in patient.lesions:
        if not masks[lesion.roi].any():
            raise DicomProblem(
                pid,
                path,
                f"{kind} roi {lesion.roi!r} (lesion {lesion.lesion_id}) covers no voxel of the "
                "CT; expected a lesion of at least one voxel",
            )
    _overlaps(patient, masks, path)
    dtype = np.uint8 if len(rois) < 256 else np.uint16
    labels = np.zeros(masks[rois[0]].shape, dtype=dtype)
    for label, roi in enumerate(rois, start=1):
        labels[masks[roi]] = label
    sitk.WriteImage(ct.image, str(cohort_dir / IMAGES / f"{pid}{SUFFIX}"), useCompression=True)
    mask = ct.grid.image(labels)
    sitk.WriteImage(mask, str(cohort_dir / MASKS / f"{pid}{SUFFIX}"), useCompression=True)
    return ct


def _write_tables(tmp: Path, plan: Plan) -> None:
    for cohort in sorted({p.cohort for p in plan.patients}):
        patients = [p for p in plan.patients if p.cohort == cohort]
        write_csv(
            tmp / cohort / PATIENTS_CSV,
            plan.clinical_columns,
            [plan.clinical[p.patient_id] for p in patients],
        )
        rows = [
            {
                "lesion_id": lesion.lesion_id,
                "patient_id": p.patient_id,
                "mask_label": label,
                "site": lesion.site,
                "irradiated": lesion.irradiated,
                "pd": lesion.pd,
            }
            for p in patients
            for label, lesion in enumerate(p.lesions, start=1)
        ]
        write_csv(tmp / cohort / LESIONS_CSV, LESION_REQUIRED, rows)


def import_dicom(
    src: Path, manifest: Path, clinical: Path, out: Path, *, progress: bool = False
) -> ImportReport:
    """Import ``src`` into the layout at ``out`` (which must not exist or be empty).

    Raises :class:`DicomImportError` listing every problem; then nothing is written.
    """
    from benchmark.data import layout

    src, out = Path(src), Path(out)
    try:
        check_empty(out)
    except FileExistsError as exc:
        raise DicomImportError([str(exc)]) from None
    plan, problems = read_plan(manifest, clinical, src)
    if plan is None:
        raise DicomImportError([str(p) for p in problems])
    index = index_series(src, plan.series_uids, progress=progress)
    failures: list[DicomProblem] = []
    cohorts = sorted({p.cohort for p in plan.patients})
    with staged(out) as tmp:
        for cohort in cohorts:
            (tmp / cohort / IMAGES).mkdir(parents=True)
            (tmp / cohort / MASKS).mkdir()
        for patient in tqdm(plan.patients, desc="import", unit="patient", disable=not progress):
            try:
                _import_patient(patient, index.get(patient.ct_series_uid), tmp / patient.cohort)
            except DicomProblem as problem:
                failures.append(problem)
        if failures:
            raise DicomImportError(failures)
        _write_tables(tmp, plan)
        scan = layout.scan(tmp, cohorts)
        if scan.problems:
            raise DicomImportError([f"imported layout: {p}" for p in scan.problems])
    return ImportReport(out, dict(scan.counts), str(scan.fingerprint))


__all__ = ["ImportReport", "import_dicom"]
