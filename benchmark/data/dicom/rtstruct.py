"""RTSTRUCT: rasterise the manifest's ROIs onto the CT's grid; write lesions as contours.

Read with pydicom and rasterised by :mod:`.polygons` rather than rt-utils: rt-utils pulls OpenCV
(about 190 MB) for two calls, fills contours through OpenCV's integer pixel grid, and assumes
the contours' slices rather than checking them. Here every contour must lie on a slice of the CT
(a planning system's contours do), and a contour inside another of the same ROI is a hole.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmark.data.dicom.errors import DicomProblem
from benchmark.data.dicom.polygons import rasterise, trace
from benchmark.data.dicom.refs import check_refs
from benchmark.data.dicom.series import CtVolume, SeriesIds

RT_STRUCTURE_SET = "1.2.840.10008.5.1.4.1.1.481.3"
# How far (in slices) a contour's plane may be from a CT slice: DS rounding, not a missing slice.
PLANE_TOL = 0.05
# How far (in voxels) a contour may reach outside the CT's field of view.
FOV_TOL = 0.5


def _referenced_series(ds) -> list[str]:
    return [
        str(series.SeriesInstanceUID)
        for frame in ds.get("ReferencedFrameOfReferenceSequence", [])
        for study in frame.get("RTReferencedStudySequence", [])
        for series in study.get("RTReferencedSeriesSequence", [])
    ]


def read_rtstruct(
    patient: str, path: Path, ct: CtVolume, rois: Sequence[str]
) -> dict[str, np.ndarray]:
    """Boolean ``[z, y, x]`` masks on the CT grid, one per named ROI (ROIName)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise DicomProblem(
            patient, path, f"cannot read as DICOM ({type(exc).__name__}: {exc})"
        ) from None
    if str(ds.get("SOPClassUID", "")) != RT_STRUCTURE_SET:
        raise DicomProblem(
            patient,
            path,
            f"modality {ds.get('Modality', '(none)')} is not RTSTRUCT; expected an RT "
            "Structure Set (or a SEG)",
        )
    by_name: dict[str, list] = {}
    for roi in ds.get("StructureSetROISequence", []):
        by_name.setdefault(str(roi.ROIName), []).append(roi)
    wanted = []
    for name in rois:
        hits = by_name.get(name, [])
        if len(hits) != 1:
            what = "is not" if not hits else f"names {len(hits)} ROIs"
            raise DicomProblem(
                patient,
                path,
                f"ROI {name!r} {what} in this RTSTRUCT; its ROIs are "
                f"{', '.join(repr(n) for n in by_name) or '(none)'}; expected each manifest roi "
                "to name one ROIName",
            )
        wanted.append(hits[0])
    frames = [roi.get("ReferencedFrameOfReferenceUID", "") for roi in wanted]
    check_refs(patient, path, "RTSTRUCT", frames, _referenced_series(ds), ct)
    contours = {int(c.ReferencedROINumber): c for c in ds.get("ROIContourSequence", [])}
    grid = ct.grid
    nx, ny, nz = grid.size
    masks = {}
    for name, roi in zip(rois, wanted, strict=True):
        item = contours.get(int(roi.ROINumber))
        sequence = [] if item is None else item.get("ContourSequence", [])
        if not sequence:
            raise DicomProblem(
                patient, path, f"ROI {name!r} has no contours; expected the lesion's outline"
            )
        per_slice: dict[int, list[np.ndarray]] = {}
        for contour in sequence:
            kind = str(contour.get("ContourGeometricType", ""))
            points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
            if kind != "CLOSED_PLANAR" or len(points) < 3:
                raise DicomProblem(
                    patient,
                    path,
                    f"ROI {name!r} has a {kind or 'untyped'} contour of {len(points)} points; "
                    "expected CLOSED_PLANAR polygons",
                )
            index = grid.to_index(points)
            k = int(np.round(index[:, 2].mean()))
            off_plane = np.abs(index[:, 2] - k).max()
            if off_plane > PLANE_TOL or not 0 <= k < nz:
                z_mm = float(points[:, 2].mean())
                raise DicomProblem(
                    patient,
                    path,
                    f"ROI {name!r} has a contour at z = {z_mm:.2f} mm (slice index "
                    f"{index[:, 2].mean():.2f}) that lies on no slice of CT series "
                    f"{ct.series_uid} ({nz} slices, {grid.spacing[2]:.2f} mm apart); expected "
                    "contours on the series' slices",
                )
            outside = (
                (index[:, 0] < -FOV_TOL - 0.5)
                | (index[:, 0] > nx - 0.5 + FOV_TOL)
                | (index[:, 1] < -FOV_TOL - 0.5)
                | (index[:, 1] > ny - 0.5 + FOV_TOL)
            )
            if outside.any():
                raise DicomProblem(
                    patient,
                    path,
                    f"ROI {name!r} has a contour on slice {k} reaching outside the CT's "
                    f"{nx}x{ny} field of view; expected contours inside the image",
                )
            per_slice.setdefault(k, []).append(index[:, :2])
        mask = np.zeros((nz, ny, nx), dtype=bool)
        for k, polygons in per_slice.items():
            mask[k] = rasterise(polygons, (ny, nx))
        masks[name] = mask
    return masks


def write_rtstruct(
    path: Path,
    ct_datasets: Sequence,
    ct: CtVolume,
    masks: Sequence[tuple[str, np.ndarray]],
    ids: SeriesIds,
) -> None:
    """One RT Structure Set with one ROI per ``(name, [z, y, x] mask)``, traced on voxel edges."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence as DicomSequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    first = ct_datasets[0]
    sop = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = RT_STRUCTURE_SET
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = RT_STRUCTURE_SET, sop
    ds.Modality = "RTSTRUCT"
    for name in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyDate",
                 "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName"):  # fmt: skip
        setattr(ds, name, first.get(name, ""))
    ds.StudyInstanceUID = ids.study
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = generate_uid(), 3, 1
    ds.Manufacturer = "nsclc-io-bench"
    ds.StructureSetLabel = "LESIONS"
    ds.StructureSetDate, ds.StructureSetTime = first.StudyDate, first.StudyTime

    def image_refs(indices: Sequence[int]) -> DicomSequence:
        refs = []
        for k in indices:
            ref = Dataset()
            ref.ReferencedSOPClassUID = ct_datasets[k].SOPClassUID
            ref.ReferencedSOPInstanceUID = ct_datasets[k].SOPInstanceUID
            refs.append(ref)
        return DicomSequence(refs)

    series_ref = Dataset()
    series_ref.SeriesInstanceUID = ids.series
    series_ref.ContourImageSequence = image_refs(range(len(ct_datasets)))
    study_ref = Dataset()
    study_ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management
    study_ref.ReferencedSOPInstanceUID = ids.study
    study_ref.RTReferencedSeriesSequence = DicomSequence([series_ref])
    frame_ref = Dataset()
    frame_ref.FrameOfReferenceUID = ids.frame_of_reference
    frame_ref.RTReferencedStudySequence = DicomSequence([study_ref])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame_ref])

    rois, contours, observations = [], [], []
    for number, (name, mask) in enumerate(masks, start=1):
        roi = Dataset()
        roi.ROINumber, roi.ROIName = number, name
        roi.ReferencedFrameOfReferenceUID = ids.frame_of_reference
        roi.ROIGenerationAlgorithm = "MANUAL"
        rois.append(roi)
        items = []
        for k in np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1)):
            for polygon in trace(mask[k]):
                index = np.column_stack([polygon, np.full(len(polygon), float(k))])
                mm = ct.grid.to_mm(index)
                item = Dataset()
                item.ContourGeometricType = "CLOSED_PLANAR"
                item.NumberOfContourPoints = len(mm)
                item.ContourData = [f"{v:.6f}" for v in mm.ravel()]
                item.ContourImageSequence = image_refs([int(k)])
                items.append(item)
        contour = Dataset()
        contour.ReferencedROINumber = number
        contour.ROIDisplayColor = [255, 0, 0]
        contour.ContourSequence = DicomSequence(items)
        contours.append(contour)
        observation = Dataset()
        observation.ObservationNumber = observation.ReferencedROINumber = number
        observation.RTROIInterpretedType = "GTV"
        observation.ROIInterpreter = ""
        observations.append(observation)
    ds.StructureSetROISequence = DicomSequence(rois)
    ds.ROIContourSequence = DicomSequence(contours)
    ds.RTROIObservationsSequence = DicomSequence(observations)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


__all__ = ["read_rtstruct", "write_rtstruct"]
