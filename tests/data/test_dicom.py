"""DICOM import and export: round trips of simulated cohorts, and what the importer refuses."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_helpers import (
    cut_layout,
    dice_per_lesion,
    edit,
    edit_series,
    only_patient,
    read_rows,
    write_rows,
)
from pydicom.uid import generate_uid

from benchmark.data import layout
from benchmark.data.__main__ import main as cli
from benchmark.data.dicom import DicomImportError, export_dicom, import_dicom
from benchmark.data.dicom.polygons import rasterise, trace

COHORT = "pembro_rt"
PATIENTS = ("PRT-001", "PRT-002", "PRT-005")


@pytest.fixture(scope="session")
def small_layout(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cut_layout(tiny_root, tmp_path_factory.mktemp("small") / "layout", COHORT, PATIENTS)


@pytest.fixture(scope="session")
def exported(small_layout: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "dicom"
    export_dicom(small_layout, out)
    return out


@pytest.fixture
def src(exported: Path, tmp_path: Path) -> Path:
    """A fresh copy of the export, to break."""
    return Path(shutil.copytree(exported, tmp_path / "dicom"))


def _import(src: Path, kind: str, out: Path, patient: str | None = None) -> Path:
    manifest = src / f"manifest_{kind}.csv"
    if patient is not None:
        manifest = only_patient(manifest, patient, src.parent / f"{patient}-{kind}.csv")
    import_dicom(src, manifest, src / "clinical.csv", out)
    return out


def _refused(src: Path, kind: str, tmp_path: Path, patient: str = "PRT-001") -> str:
    """The importer's message for ``patient``; checks that nothing at all was written."""
    out = tmp_path / "out"
    with pytest.raises(DicomImportError) as info:
        _import(src, kind, out, patient)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("out.tmp")]
    message = str(info.value)
    assert f"patient {patient}" in message and "nothing was written" in message
    return message


# -- polygons -----------------------------------------------------------------------------------


def test_traced_polygons_rasterise_back_to_their_mask() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):  # holes, diagonal neighbours, single voxels, edges of the image
        shape = tuple(int(n) for n in rng.integers(1, 14, 2))
        mask = rng.random(shape) < rng.random()
        assert np.array_equal(rasterise(trace(mask), shape), mask)


def test_rasterise_fills_voxel_centres_inside_and_treats_nested_contours_as_holes() -> None:
    from matplotlib.path import Path as PolygonPath

    rng = np.random.default_rng(1)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 40))
    radii = rng.uniform(5, 25, 40)  # a star-shaped, concave polygon off the voxel lattice
    polygon = np.stack([60.3 + radii * np.cos(angles), 50.2 + radii * np.sin(angles)], 1)
    rows, cols = np.mgrid[:120, :120]
    centres = np.stack([cols.ravel(), rows.ravel()], 1)
    expected = PolygonPath(polygon).contains_points(centres).reshape(120, 120)
    assert np.array_equal(rasterise([polygon], (120, 120)), expected)
    outer = np.array([[0.0, 0.0], [9.0, 0.0], [9.0, 9.0], [0.0, 9.0]])
    inner = np.array([[3.0, 3.0], [6.0, 3.0], [6.0, 6.0], [3.0, 6.0]])
    ring = rasterise([outer, inner], (10, 10))
    assert (
        ring[1, 1] and not ring[4, 4] and ring.sum() == 9 * 9 - 3 * 3
    )  # half-open: centres 0..8, hole 3..5


# -- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["seg", "rtstruct"])
def test_export_then_import_gives_back_the_layout(
    small_layout: Path, exported: Path, kind: str, tmp_path: Path
) -> None:
    out = _import(exported, kind, tmp_path / "imported")
    original = layout.scan(small_layout, [COHORT])
    imported = layout.scan(out, [COHORT])
    assert imported.problems == [] and original.problems == []
    for pid in PATIENTS:
        for sub in ("images", "masks"):
            a = sitk.ReadImage(str(small_layout / COHORT / sub / f"{pid}.nii.gz"))
            b = sitk.ReadImage(str(out / COHORT / sub / f"{pid}.nii.gz"))
            assert np.array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
            assert (a.GetSize(), a.GetSpacing(), a.GetOrigin(), a.GetDirection()) == (
                b.GetSize(), b.GetSpacing(), b.GetOrigin(), b.GetDirection()
            )  # fmt: skip
    scores = dice_per_lesion(small_layout, out, COHORT)
    print(f"{kind} Dice per lesion:", {k: round(v, 4) for k, v in scores.items()})
    assert min(scores.values()) >= (1.0 if kind == "seg" else 0.98)
    # Tables, images and masks alike: the same dataset content.
    assert imported.fingerprint == original.fingerprint


def test_cli_import_then_validate(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "layout"
    manifest = only_patient(exported / "manifest_rtstruct.csv", "PRT-005", tmp_path / "m.csv")
    clinical = exported / "clinical.csv"
    argv = ["import-dicom", str(exported), str(out), "--manifest", str(manifest)]
    assert cli([*argv, "--clinical", str(clinical), "--no-progress"]) == 0
    assert f"wrote {out}: sha256:" in capsys.readouterr().out
    assert cli(["validate", str(out), "--cohorts", COHORT]) == 0
    assert "is valid" in capsys.readouterr().out
    # A refused import: every problem printed, exit 1, nothing written.
    (tmp_path / "bad.csv").write_text(manifest.read_text().replace("PRT-005-L1,", "X,", 1))
    argv = ["import-dicom", str(exported), str(tmp_path / "no"), "--manifest"]
    assert cli([*argv, str(tmp_path / "bad.csv"), "--clinical", str(clinical)]) == 1
    assert "ROI 'X' is not in this RTSTRUCT" in capsys.readouterr().out
    assert not (tmp_path / "no").exists()


# -- what the importer refuses ------------------------------------------------------------------


def _ct(src: Path, patient: str = "PRT-001") -> Path:
    return src / COHORT / patient / "CT"


def test_missing_slice_is_refused(src: Path, tmp_path: Path) -> None:
    (_ct(src) / "CT0005.dcm").unlink()
    message = _refused(src, "seg", tmp_path)
    assert "misses 1 slice" in message and "CT0004.dcm" in message and "contiguous" in message


def test_uneven_spacing_is_refused(src: Path, tmp_path: Path) -> None:
    def shift(ds: pydicom.Dataset) -> None:
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, z + 1.3]

    edit(_ct(src) / "CT0005.dcm", shift)
    assert "uneven slice spacing" in _refused(src, "seg", tmp_path)


def test_two_series_under_one_uid_are_refused(src: Path, tmp_path: Path) -> None:
    uid = pydicom.dcmread(_ct(src) / "CT0001.dcm").SeriesInstanceUID
    stray = _ct(src) / "CT9999.dcm"
    shutil.copy(_ct(src, "PRT-002") / "CT0003.dcm", stray)
    edit(stray, lambda ds: setattr(ds, "SeriesInstanceUID", uid))
    message = _refused(src, "rtstruct", tmp_path)
    assert (
        "mixes images of different" in message and "one CT series per SeriesInstanceUID" in message
    )


def test_a_repeated_slice_position_is_refused(src: Path, tmp_path: Path) -> None:
    copy = _ct(src) / "CT0005b.dcm"
    shutil.copy(_ct(src) / "CT0005.dcm", copy)
    edit(copy, lambda ds: setattr(ds, "SOPInstanceUID", generate_uid()))
    assert "repeat a slice position" in _refused(src, "seg", tmp_path)


def test_non_ct_modality_is_refused(src: Path, tmp_path: Path) -> None:
    edit_series(_ct(src), lambda ds: setattr(ds, "Modality", "MR"))
    assert "modality MR; expected CT images only" in _refused(src, "seg", tmp_path)


def test_missing_rescale_is_refused(src: Path, tmp_path: Path) -> None:
    edit(_ct(src) / "CT0007.dcm", lambda ds: delattr(ds, "RescaleSlope"))
    message = _refused(src, "seg", tmp_path)
    assert "RescaleSlope missing in 1 of" in message and "CT0007.dcm" in message


@pytest.mark.parametrize("kind", ["seg", "rtstruct"])
def test_segmentation_of_another_frame_of_reference_is_refused(
    src: Path, tmp_path: Path, kind: str
) -> None:
    path = src / COHORT / "PRT-001" / ("SEG.dcm" if kind == "seg" else "RTSTRUCT.dcm")
    other = generate_uid()

    def move(ds: pydicom.Dataset) -> None:
        if kind == "seg":
            ds.FrameOfReferenceUID = other
        else:
            for roi in ds.StructureSetROISequence:
                roi.ReferencedFrameOfReferenceUID = other

    edit(path, move)
    message = _refused(src, kind, tmp_path)
    assert f"FrameOfReferenceUID {other} is not the CT's" in message and path.name in message


@pytest.mark.parametrize("kind", ["seg", "rtstruct"])
def test_segmentation_of_another_series_is_refused(src: Path, tmp_path: Path, kind: str) -> None:
    path = src / COHORT / "PRT-001" / ("SEG.dcm" if kind == "seg" else "RTSTRUCT.dcm")
    other = generate_uid()

    def repoint(ds: pydicom.Dataset) -> None:
        if kind == "seg":
            ds.ReferencedSeriesSequence[0].SeriesInstanceUID = other
        else:
            frame = ds.ReferencedFrameOfReferenceSequence[0]
            frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[
                0
            ].SeriesInstanceUID = other

    edit(path, repoint)
    assert f"references series {other}, not the CT series" in _refused(src, kind, tmp_path)


@pytest.mark.parametrize("kind", ["seg", "rtstruct"])
def test_roi_absent_from_the_segmentation_is_refused(src: Path, tmp_path: Path, kind: str) -> None:
    manifest = src / f"manifest_{kind}.csv"
    rows = read_rows(manifest)
    rows[0]["roi"] = "GTV_missing"
    write_rows(manifest, rows)
    message = _refused(src, kind, tmp_path)
    assert "'GTV_missing' is not in this" in message and "PRT-001-L1" in message


def test_contour_off_the_series_slices_is_refused(src: Path, tmp_path: Path) -> None:
    def lift(ds: pydicom.Dataset) -> None:
        contour = ds.ROIContourSequence[0].ContourSequence[0]
        points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
        points[:, 2] += 1.7  # slices are 4 mm apart
        contour.ContourData = [f"{v:.6f}" for v in points.ravel()]

    edit(src / COHORT / "PRT-001" / "RTSTRUCT.dcm", lift)
    assert "lies on no slice of CT series" in _refused(src, "rtstruct", tmp_path)


def test_overlapping_lesions_are_refused(src: Path, tmp_path: Path) -> None:
    def overlap(ds: pydicom.Dataset) -> None:
        ds.ROIContourSequence[1].ContourSequence = ds.ROIContourSequence[0].ContourSequence

    edit(src / COHORT / "PRT-001" / "RTSTRUCT.dcm", overlap)
    message = _refused(src, "rtstruct", tmp_path)
    assert "PRT-001-L1" in message and "PRT-001-L2" in message and "overlap in" in message


def test_every_bad_patient_is_listed_and_nothing_is_written(src: Path, tmp_path: Path) -> None:
    (_ct(src, "PRT-001") / "CT0003.dcm").unlink()
    edit_series(_ct(src, "PRT-005"), lambda ds: setattr(ds, "Modality", "PT"))
    out = tmp_path / "out"
    with pytest.raises(DicomImportError) as info:
        _import(src, "seg", out)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["dicom"]
    assert len(info.value.problems) == 2
    assert "patient PRT-001" in info.value.problems[0]
    assert "patient PRT-005" in info.value.problems[1]


def test_bad_manifest_and_clinical_rows_are_named_by_line(src: Path, tmp_path: Path) -> None:
    manifest = src / "manifest_seg.csv"
    rows = read_rows(manifest)
    rows[1]["pd"] = "yes"
    rows[2]["cohort"] = "elsewhere"
    write_rows(manifest, rows)
    clinical = read_rows(src / "clinical.csv")
    write_rows(src / "clinical.csv", [r for r in clinical if r["patient_id"] != "PRT-005"])
    with pytest.raises(DicomImportError) as info:
        import_dicom(src, manifest, src / "clinical.csv", tmp_path / "out")
    text = str(info.value)
    assert "manifest_seg.csv:3 [pd]" in text and "manifest_seg.csv:4 [cohort]" in text
    assert "clinical.csv" in text and "PRT-005" in text


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["seg", "rtstruct"])
def test_the_tiny_cohorts_round_trip(tiny_root: Path, tmp_path: Path, kind: str) -> None:
    dicom = tmp_path / "dicom"
    export_dicom(tiny_root, dicom)
    out = _import(dicom, kind, tmp_path / "imported")
    assert layout.scan(out).fingerprint == layout.scan(tiny_root).fingerprint
    for cohort in ("pembro_rt", "nivorad", "mdacc"):
        scores = dice_per_lesion(tiny_root, out, cohort)
        print(f"{kind} {cohort} Dice per lesion:", {k: round(v, 4) for k, v in scores.items()})
        assert min(scores.values()) >= (1.0 if kind == "seg" else 0.98)
