"""DICOM on real CT (``make fixtures``): pyradiomics' lung CTs, pydicom's real series, a SEG
written by dcmqi."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_helpers import dice_per_lesion, write_rows

from benchmark.data import layout
from benchmark.data.dicom import DicomImportError, export_dicom, import_dicom
from benchmark.data.dicom.seg import read_seg
from benchmark.data.dicom.series import index_series, read_ct

CLINICAL = {
    "arm": "io", "pdl1_tps": "", "age": "70", "sex": "F", "ecog": "0", "os_months": "9.5",
    "os_event": "1", "pfs_months": "2.1", "pfs_event": "1",
}  # fmt: skip


def _manifest(tmp_path: Path, series: Path, segmentation: Path, rois: list[str]) -> Path:
    uid = pydicom.dcmread(next(series.glob("*.dcm"))).SeriesInstanceUID
    rows = [
        {"cohort": "pembro_rt", "patient_id": "REAL-1", "ct_series_uid": uid,
         "segmentation": str(segmentation), "roi": roi, "lesion_id": f"REAL-1-L{i + 1}",
         "site": "lung", "irradiated": "0", "pd": str(i % 2)}
        for i, roi in enumerate(rois)
    ]  # fmt: skip
    write_rows(tmp_path / "manifest.csv", rows)
    write_rows(tmp_path / "clinical.csv", [{"patient_id": "REAL-1", **CLINICAL}])
    return tmp_path / "manifest.csv"


def test_real_series_reads_as_hounsfield_units_on_its_grid(real_fixtures: Path) -> None:
    folder = real_fixtures / "pydicom" / "CT5N"
    slices = [pydicom.dcmread(p) for p in folder.glob("*.dcm")]
    (series,) = index_series(folder, {slices[0].SeriesInstanceUID}).values()
    ct = read_ct("REAL-1", series)
    slices.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))  # axial: z is the normal
    expected = np.stack(
        [ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in slices]
    )
    assert np.array_equal(sitk.GetArrayFromImage(ct.image), expected)
    assert ct.grid.size == (16, 16, 5)
    assert ct.grid.spacing == pytest.approx((0.488281, 0.488281, 2.5))
    assert ct.grid.origin == pytest.approx([float(v) for v in slices[0].ImagePositionPatient])


def test_real_series_with_a_gap_is_refused(real_fixtures: Path, tmp_path: Path) -> None:
    series = real_fixtures / "pydicom" / "CT2"
    seg = real_fixtures / "dcmqi" / "CT5N_seg.dcm"
    manifest = _manifest(tmp_path, series, seg, ["lesion 1"])
    with pytest.raises(DicomImportError) as info:
        import_dicom(real_fixtures / "pydicom", manifest, tmp_path / "clinical.csv", tmp_path / "o")
    assert not (tmp_path / "o").exists()
    (message,) = info.value.problems
    assert message.startswith("patient REAL-1 (") and "CT2" in message
    assert "misses 161 slices" in message and "17106.dcm" in message


def test_third_party_seg_decodes_onto_the_real_series(real_fixtures: Path, tmp_path: Path) -> None:
    seg = real_fixtures / "dcmqi" / "CT5N_seg.dcm"
    assert pydicom.dcmread(seg).Manufacturer == "QIICR"  # written by dcmqi, not by us
    folder = real_fixtures / "pydicom" / "CT5N"
    uid = pydicom.dcmread(next(folder.glob("*.dcm"))).SeriesInstanceUID
    ct = read_ct("REAL-1", index_series(folder, {uid})[uid])
    masks = read_seg("REAL-1", seg, ct, ["lesion 2", "lesion 1"])
    drawn = sitk.ReadImage(str(real_fixtures / "dcmqi" / "CT5N_mask.nrrd"))  # what dcmqi encoded
    drawn = sitk.GetArrayFromImage(
        sitk.Resample(drawn, ct.image, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    )
    assert masks["lesion 2"].sum() == 9 and masks["lesion 1"].sum() == 60
    assert np.array_equal(masks["lesion 2"], drawn == 2)
    assert np.array_equal(masks["lesion 1"], drawn == 1)

    # dcmqi's "lesion 2" is 3x3 voxels on one slice (1.5 mm across): on radiomics' 1 mm grid a
    # line, which pyradiomics refuses, so the import is refused, naming it.
    rois = ["lesion 2", "lesion 1"]
    manifest = _manifest(tmp_path, folder, seg, rois)
    with pytest.raises(DicomImportError) as info:
        import_dicom(real_fixtures / "pydicom", manifest, tmp_path / "clinical.csv", tmp_path / "o")
    (message,) = info.value.problems
    assert "REAL-1-L1: mask_label 1 in pembro_rt/masks/REAL-1.nii.gz spans fewer than 2" in message
    assert not (tmp_path / "o").exists()

    manifest = _manifest(tmp_path, folder, seg, ["lesion 1"])
    out = tmp_path / "layout"
    import_dicom(real_fixtures / "pydicom", manifest, tmp_path / "clinical.csv", out)
    assert layout.scan(out, ["pembro_rt"]).problems == []
    got = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "pembro_rt" / "masks" / "REAL-1.nii.gz")))
    assert np.array_equal(got == 1, drawn == 1) and not (got > 1).any()


def _lung_round_trip(original: Path, tmp_path: Path, case: str) -> None:
    dicom = tmp_path / "dicom"
    export_dicom(original, dicom)
    for kind in ("seg", "rtstruct"):
        out = tmp_path / kind
        import_dicom(dicom, dicom / f"manifest_{kind}.csv", dicom / "clinical.csv", out)
        pid = f"PRT-{case.upper()}"
        a = sitk.ReadImage(str(original / "pembro_rt" / "images" / f"{pid}.nii.gz"))
        b = sitk.ReadImage(str(out / "pembro_rt" / "images" / f"{pid}.nii.gz"))
        assert np.array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
        assert b.GetSize() == (512, 512, a.GetSize()[2])
        for get in ("GetSpacing", "GetOrigin", "GetDirection"):
            assert getattr(b, get)() == pytest.approx(getattr(a, get)(), abs=1e-6)
        scores = dice_per_lesion(original, out, "pembro_rt")
        print(f"{case} {kind} Dice per lesion:", {k: round(v, 4) for k, v in scores.items()})
        assert min(scores.values()) >= (1.0 if kind == "seg" else 0.98)


def test_lung1_round_trips_through_seg_and_rtstruct(lung_root, tmp_path: Path) -> None:
    _lung_round_trip(lung_root("lung1"), tmp_path, "lung1")


@pytest.mark.slow
def test_lung2_round_trips_through_seg_and_rtstruct(lung_root, tmp_path: Path) -> None:
    _lung_round_trip(lung_root("lung2"), tmp_path, "lung2")
