"""CT series: find them under a folder, check them, read them onto a :class:`Grid`, write them.

Headers are read first (pydicom, no pixels) so that a bad series is refused before any pixel is
decoded; highdicom then builds the volume, refusing what is not one regularly spaced stack (where
SimpleITK's reader only warns and interpolates nothing). Every check names the patient and files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from tqdm.auto import tqdm

from benchmark.data.dicom.errors import DicomProblem
from benchmark.data.dicom.grid import Grid

# Relative tolerance on slice distances (highdicom's default): 1% of the spacing.
SPACING_RTOL = 0.01
_ORIENTATION_ATOL = 1e-4


@dataclass
class SeriesFiles:
    """The files of one SeriesInstanceUID found under the source folder, with their headers."""

    uid: str
    files: list[Path] = field(default_factory=list)
    headers: list = field(default_factory=list)  # pydicom Datasets without pixel data


@dataclass(frozen=True)
class CtVolume:
    """A checked CT: HU voxels on its grid, its frame of reference and its slices' files."""

    image: sitk.Image
    grid: Grid
    frame_of_reference: str
    series_uid: str
    files: tuple[Path, ...]  # by slice index z


def index_series(
    src: Path, wanted: Iterable[str], *, progress: bool = False
) -> dict[str, SeriesFiles]:
    """The files of each wanted SeriesInstanceUID under ``src`` (every file's header is read).

    Files that are not DICOM, and DICOM files of other series, are skipped.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    wanted = set(wanted)
    paths = sorted(
        Path(root) / name for root, _, names in os.walk(src) for name in names if name != "DICOMDIR"
    )
    found: dict[str, SeriesFiles] = {}
    for path in tqdm(paths, desc="dicom headers", unit="file", disable=not progress):
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError):
            continue
        uid = str(header.get("SeriesInstanceUID", ""))
        if uid in wanted:
            entry = found.setdefault(uid, SeriesFiles(uid))
            entry.files.append(path)
            entry.headers.append(header)
    return found


def _vector(header, name: str, n: int) -> np.ndarray | None:
    value = header.get(name)
    if value is None or len(value) != n:
        return None
    return np.asarray([float(v) for v in value])


def _check_headers(patient: str, series: SeriesFiles) -> list[DicomProblem]:
    """What makes the series no single CT stack, before decoding any pixel."""
    problems: list[DicomProblem] = []
    uid, files, headers = series.uid, series.files, series.headers

    def bad(message: str, file: Path | str | None = None) -> None:
        problems.append(DicomProblem(patient, file, message))

    modalities = {str(h.get("Modality", "")) for h in headers}
    if modalities != {"CT"}:
        other = next(f for f, h in zip(files, headers, strict=True) if h.get("Modality") != "CT")
        bad(
            f"series {uid} has modality {', '.join(sorted(m or '(none)' for m in modalities))}; "
            "expected CT images only",
            other,
        )
        return problems
    if any(int(h.get("NumberOfFrames", 1) or 1) > 1 for h in headers):
        bad(f"series {uid} holds multi-frame (enhanced) CT; expected single-frame CT images")
        return problems
    for name in ("RescaleSlope", "RescaleIntercept"):
        missing = [f for f, h in zip(files, headers, strict=True) if h.get(name) in (None, "")]
        if missing:
            bad(
                f"{name} missing in {len(missing)} of {len(files)} images of series {uid}; "
                "expected RescaleSlope and RescaleIntercept in every image, to convert stored "
                "values to HU",
                missing[0],
            )
    for name, n in (("ImagePositionPatient", 3), ("ImageOrientationPatient", 6)):
        missing = [f for f, h in zip(files, headers, strict=True) if _vector(h, name, n) is None]
        if missing:
            bad(f"{name} missing in {len(missing)} images; expected it in every image", missing[0])
    if problems:
        return problems
    if len(files) < 2:
        bad(f"series {uid} has one image; expected a CT volume of several slices", files[0])
        return problems
    # Several series under one UID: images that disagree on what one stack shares.
    shared = {
        "FrameOfReferenceUID": lambda h: str(h.get("FrameOfReferenceUID", "")),
        "Rows x Columns": lambda h: (int(h.get("Rows", 0)), int(h.get("Columns", 0))),
        "PixelSpacing": lambda h: tuple(round(float(v), 6) for v in h.get("PixelSpacing", [])),
        "ImageOrientationPatient": lambda h: tuple(
            np.round(_vector(h, "ImageOrientationPatient", 6) / _ORIENTATION_ATOL).astype(int)
        ),
    }
    for name, key in shared.items():
        values: dict[object, Path] = {}
        for f, h in zip(files, headers, strict=True):
            values.setdefault(key(h), f)
        if len(values) > 1:
            (a, fa), (b, fb) = list(values.items())[:2]
            bad(
                f"series {uid} mixes images of different {name} ({fa.name}: {a}, {fb.name}: {b}); "
                "expected one CT series per SeriesInstanceUID (several series or acquisitions "
                "share this UID)",
                fa.parent,
            )
    if problems:
        return problems
    orientation = _vector(headers[0], "ImageOrientationPatient", 6)
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.stack([_vector(h, "ImagePositionPatient", 3) for h in headers])
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    along, positions = along[order], positions[order]
    ordered = [files[i] for i in order]
    steps = np.diff(along)
    tol = SPACING_RTOL * max(float(np.median(steps)), 1e-6)
    dup = np.flatnonzero(steps < tol)
    if dup.size:
        i = int(dup[0])
        bad(
            f"series {uid}: {dup.size} images repeat a slice position (e.g. {ordered[i].name} and "
            f"{ordered[i + 1].name} at {along[i]:.2f} mm along the slice normal); expected one "
            "image per position (several series or acquisitions share this SeriesInstanceUID)",
            ordered[i].parent,
        )
        return problems
    in_plane = positions - positions[0] - np.outer(along - along[0], normal)
    if np.abs(in_plane).max() > tol:
        bad(
            f"series {uid}: slices are not stacked along their normal (in-plane shift up to "
            f"{np.abs(in_plane).max():.2f} mm, a gantry tilt?); expected an untilted stack",
            ordered[0].parent,
        )
        return problems
    spacing = float(steps.min())
    if steps.max() - spacing > tol:
        i = int(np.argmax(steps))
        ratio = steps / spacing
        if np.all(np.abs(ratio - np.round(ratio)) * spacing <= tol):
            missing = int(np.round(ratio).sum() - len(steps))
            bad(
                f"series {uid} misses {missing} slice{'' if missing == 1 else 's'}: a gap of "
                f"{steps[i]:.2f} mm between {ordered[i].name} ({along[i]:.2f} mm) and "
                f"{ordered[i + 1].name} ({along[i + 1]:.2f} mm) where its slices are "
                f"{spacing:.2f} mm apart; expected contiguous, evenly spaced slices",
                ordered[i].parent,
            )
        else:
            bad(
                f"series {uid} has uneven slice spacing: {spacing:.3f} to {steps.max():.3f} mm "
                f"(widest between {ordered[i].name} and {ordered[i + 1].name}); expected one "
                f"spacing (within {SPACING_RTOL:.0%})",
                ordered[i].parent,
            )
    return problems


def read_ct(patient: str, series: SeriesFiles) -> CtVolume:
    """The series as HU on its grid; raises :class:`DicomProblem` with the first thing wrong."""
    import highdicom as hd
    import pydicom

    problems = _check_headers(patient, series)
    if problems:
        raise problems[0]
    folder = series.files[0].parent
    try:
        datasets = [pydicom.dcmread(f) for f in series.files]
        volume = hd.get_volume_from_series(
            datasets,
            dtype=np.float32,
            apply_real_world_transform=False,
            apply_modality_transform=True,
            apply_voi_transform=False,
            apply_presentation_lut=False,
            apply_palette_color_lut=False,
            apply_icc_profile=False,
            rtol=SPACING_RTOL,
        )
    except Exception as exc:  # highdicom/pydicom raise ValueError, RuntimeError, AttributeError
        raise DicomProblem(
            patient,
            folder,
            f"cannot read series {series.uid} as one CT volume ({type(exc).__name__}: {exc}); "
            "expected regularly spaced single-frame CT images",
        ) from None
    array = np.asarray(volume.array)
    affine = np.asarray(volume.affine, dtype=float)
    steps = [affine[:3, axis] for axis in (2, 1, 0)]  # column, row, slice: x, y, z
    spacing = [float(np.linalg.norm(s)) for s in steps]
    axes = [s / n for s, n in zip(steps, spacing, strict=True)]
    origin = affine[:3, 3]
    if np.dot(axes[2], np.cross(axes[0], axes[1])) < 0:  # slices along the normal, as NIfTI
        array = array[::-1]
        origin = origin + steps[2] * (array.shape[0] - 1)
        axes[2] = -axes[2]
    grid = Grid(
        (array.shape[2], array.shape[1], array.shape[0]),
        tuple(spacing),  # type: ignore[arg-type]
        tuple(float(v) for v in origin),  # type: ignore[arg-type]
        tuple(float(v) + 0.0 for v in np.stack(axes, 1).ravel()),  # no -0.0
    )
    whole = np.round(array)
    if np.array_equal(whole, array) and whole.min() >= -32768 and whole.max() <= 32767:
        array = whole.astype(np.int16)  # integer HU, as scanners store them
    normal = grid.matrix[:, 2] / spacing[2]
    by_z = sorted(
        zip(series.files, series.headers, strict=True),
        key=lambda fh: float(np.dot(_vector(fh[1], "ImagePositionPatient", 3), normal)),
    )
    return CtVolume(
        image=grid.image(np.ascontiguousarray(array)),
        grid=grid,
        frame_of_reference=str(datasets[0].FrameOfReferenceUID),
        series_uid=series.uid,
        files=tuple(f for f, _ in by_z),
    )


@dataclass(frozen=True)
class SeriesIds:
    """The UIDs a written series shares with the objects that reference it."""

    study: str
    series: str
    frame_of_reference: str


def write_ct(
    image: sitk.Image, folder: Path, patient: str, ids: SeriesIds, *, description: str = ""
) -> list:
    """Write ``image`` (integer HU) as one single-frame CT image per slice; returns the datasets.

    Stored values are the HU themselves (RescaleSlope 1, RescaleIntercept 0, signed 16 bits), so
    an import gives back the voxels exactly.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    array = sitk.GetArrayFromImage(image)
    if array.dtype.kind not in "iu" or array.min() < -32768 or array.max() > 32767:
        whole = np.round(array)
        if not np.array_equal(whole, array) or whole.min() < -32768 or whole.max() > 32767:
            raise ValueError(
                f"patient {patient}: CT voxels are not integer HU in the int16 range; the "
                "exporter writes them unscaled"
            )
    array = array.astype(np.int16)
    grid = Grid.of(image)
    axes = np.asarray(grid.direction).reshape(3, 3)
    folder.mkdir(parents=True, exist_ok=True)
    datasets = []
    for k in range(array.shape[0]):
        sop = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop
        ds.StudyInstanceUID, ds.SeriesInstanceUID = ids.study, ids.series
        ds.FrameOfReferenceUID = ids.frame_of_reference
        ds.Modality = "CT"
        ds.PatientID, ds.PatientName = patient, f"{patient}^"
        ds.PatientBirthDate = ds.PatientSex = ds.AccessionNumber = ds.ReferringPhysicianName = ""
        ds.StudyDate, ds.StudyTime, ds.StudyID = "20000101", "000000", "1"
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.SeriesDescription = description
        ds.Manufacturer = "nsclc-io-bench"
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.PositionReferenceIndicator = ""
        ds.ImageOrientationPatient = [f"{v:.10g}" for v in (*axes[:, 0], *axes[:, 1])]
        ds.ImagePositionPatient = [f"{v:.10g}" for v in grid.to_mm(np.array([[0, 0, k]]))[0]]
        ds.PixelSpacing = [f"{grid.spacing[1]:.10g}", f"{grid.spacing[0]:.10g}"]  # row, column
        ds.SliceThickness = f"{grid.spacing[2]:.10g}"
        ds.Rows, ds.Columns = array.shape[1], array.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "HU"
        ds.PixelData = np.ascontiguousarray(array[k]).tobytes()
        ds.save_as(folder / f"CT{k + 1:04d}.dcm", enforce_file_format=True)
        datasets.append(ds)
    return datasets


__all__ = ["CtVolume", "SeriesFiles", "SeriesIds", "index_series", "read_ct", "write_ct"]
