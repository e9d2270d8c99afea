"""Lesion crops: centred at the right physical size, cached by content, and their 2.5D views."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch

from benchmark.api.cohort import Cohort
from benchmark.data import crops as crops_module
from benchmark.data.crops import (
    DISTANCE_SCALE_MM,
    CropError,
    LesionCrops,
    crop_patient,
    scaled_distance,
    view_channels,
    views_25d,
)

SPACING = (0.8, 0.8, 3.0)  # anisotropic, as thoracic CT: thin in-plane, thick slices
SIZE = (96, 80, 24)  # x, y, z voxels
ORIGIN = (-31.7, 12.4, -95.0)  # LPS mm
RADIUS_MM = 9.0
# Physical LPS centres: an off-centre sphere, and one whose cube crosses the volume border in x.
CENTRES = {1: (15.0, 40.0, -60.0), 2: (-24.0, 45.0, -60.0)}
LUNG_HU, TUMOUR_HU = -800, 40
CROP = {"spacing_mm": 1.5, "size_mm": 48.0, "hu_window": (-1000.0, 400.0)}  # 32³ voxels
MASKED = {**CROP, "label_channel": "mask"}


def _write_patient(folder: Path, direction: tuple[float, ...]) -> tuple[Path, Path]:
    """CT (HU) and instance mask with two spheres of RADIUS_MM, as NIfTI with the given axes."""
    axes = np.asarray(direction).reshape(3, 3)
    # A reversed axis starts at the far corner, so the volume covers the same physical box.
    flipped = np.diag(axes) < 0
    origin = np.asarray(ORIGIN) + np.where(flipped, (np.asarray(SIZE) - 1) * SPACING, 0.0)
    reference = sitk.Image(SIZE, sitk.sitkInt16)
    reference.SetSpacing(SPACING)
    reference.SetOrigin(origin.tolist())
    reference.SetDirection(direction)
    index = np.stack(np.meshgrid(*(np.arange(n) for n in SIZE), indexing="ij"), -1).reshape(-1, 3)
    physical = origin + (index * np.asarray(SPACING)) @ axes.T
    labels = np.zeros(len(index), np.uint8)
    for label, centre in CENTRES.items():
        labels[np.linalg.norm(physical - np.asarray(centre), axis=1) <= RADIUS_MM] = label
    mask = labels.reshape(SIZE).transpose(2, 1, 0)  # (x, y, z) -> SimpleITK's (z, y, x)
    ct = np.where(mask > 0, TUMOUR_HU, LUNG_HU).astype(np.int16)
    paths = []
    for name, array in (("image", ct), ("mask", mask)):
        image = sitk.GetImageFromArray(array)
        image.CopyInformation(reference)
        path = folder / f"{name}.nii.gz"
        sitk.WriteImage(image, str(path))
        paths.append(path)
    return paths[0], paths[1]


def _cohort(image: Path, mask: Path, labels=(1, 2), content_key: str = "sha256:abc123") -> Cohort:
    lesions = pd.DataFrame(
        {
            "patient_id": ["P1"] * len(labels),
            "mask_label": list(labels),
            "site": ["lung"] * len(labels),
            "irradiated": [0] * len(labels),
        },
        index=pd.Index([f"P1-L{k}" for k in labels], name="lesion_id"),
    )
    patients = pd.DataFrame({"arm": ["io"]}, index=pd.Index(["P1"], name="patient_id"))
    return Cohort("synthetic", patients, lesions, {"P1": image}, {"P1": mask}, {"P1": content_key})


IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
FLIPPED = (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0)  # x and z stored reversed


@pytest.mark.parametrize("direction", [IDENTITY, FLIPPED], ids=["identity", "flipped"])
def test_lesion_is_centred_at_its_physical_size(tmp_path: Path, direction):
    image, mask = _write_patient(tmp_path, direction)
    crops = LesionCrops(cache_dir=None, progress=False, **MASKED)
    x, ids = crops(_cohort(image, mask))
    assert ids == ["P1-L1", "P1-L2"]
    assert x.shape == (2, 2, 32, 32, 32) and x.dtype == np.float32
    centre = (32 - 1) / 2
    for i in range(2):
        lesion = x[i, 1]
        assert set(np.unique(lesion)) == {0.0, 1.0}
        voxels = np.argwhere(lesion > 0)
        np.testing.assert_allclose(voxels.mean(axis=0), centre, atol=1.0)
        # Extent and volume at the target spacing match the sphere's physical radius.
        extent_mm = (voxels.max(axis=0) - voxels.min(axis=0) + 1) * 1.5
        np.testing.assert_allclose(extent_mm, 2 * RADIUS_MM, rtol=0.15)
        volume = lesion.sum() * 1.5**3
        assert volume == pytest.approx(4 / 3 * np.pi * RADIUS_MM**3, rel=0.15)
        # CT channel: tumour bright, lung dark, on the [0, 1] window scale.
        ct = x[i, 0]
        tumour, lung = (TUMOUR_HU + 1000) / 1400, (LUNG_HU + 1000) / 1400
        core = lesion > 0
        assert ct[13:19, 13:19, 13:19].mean() == pytest.approx(tumour, abs=0.02)  # within 4.5 mm
        assert ct[core].mean() > (tumour + lung) / 2  # the edge voxels blur into lung
        assert ct[~core & (ct > 0)].mean() == pytest.approx(lung, abs=0.05)
    # Lesion 2's cube leaves the volume in x (its centre is 7.7 mm from the edge): padded with 0
    # (air) on that side only; lesion 1's cube is inside the volume, all lung or tumour.
    assert (x[1, 0, -9:] == 0).all() and (x[1, 0, :20] > 0).all()
    assert (x[0, 0] > 0).all()


def test_crop_axes_are_ras(tmp_path: Path):
    """Index grows towards the patient's Right, Anterior, Superior, whatever the file's axes."""
    image, mask = _write_patient(tmp_path, IDENTITY)
    crops = LesionCrops(cache_dir=None, progress=False, **CROP)
    x, _ = crops(_cohort(image, mask, labels=(2,)))
    # Lesion 2 is 7.7 mm from the volume's rightmost plane (LPS x = -31.7 mm, RAS x = +31.7 mm,
    # the first column of the file): in RAS the right is the high end of axis 0.
    padded = np.flatnonzero((x[0, 0] == 0).all(axis=(1, 2)))
    assert len(padded) > 0 and padded.min() > 16


def test_cache_hit_reads_no_nifti_and_is_identical(tmp_path: Path, monkeypatch):
    image, mask = _write_patient(tmp_path, IDENTITY)
    crops = LesionCrops(cache_dir=tmp_path / "cache", progress=False, **CROP)
    cohort = _cohort(image, mask)
    first, ids = crops(cohort)
    cached = crops.cache_path("sha256:abc123")
    assert cached is not None and cached.is_file() and cached.parent.name == crops.key
    assert not list(cached.parent.glob(".*.tmp"))  # atomic writes leave no temp file

    image.unlink()
    mask.unlink()

    def no_reading(*args, **kwargs):
        raise AssertionError("a cache hit must not crop (read NIfTI) again")

    monkeypatch.setattr(crops_module, "crop_patient", no_reading)
    again, ids_again = LesionCrops(cache_dir=tmp_path / "cache", progress=False, **CROP)(cohort)
    assert ids_again == ids
    np.testing.assert_array_equal(again, first)
    # Another content key is another patient: it misses the cache (and the files are gone).
    with pytest.raises(CropError, match="P1"):
        crops(_cohort(image, mask, content_key="sha256:other"))


def test_changing_a_setting_changes_the_key(monkeypatch):
    base = LesionCrops(cache_dir=None, **CROP)
    changed = [
        LesionCrops(cache_dir=None, **{**CROP, "spacing_mm": 1.0}),
        LesionCrops(cache_dir=None, **{**CROP, "size_mm": 64.0}),
        LesionCrops(cache_dir=None, **{**CROP, "hu_window": (-1000.0, 200.0)}),
    ]
    keys = {base.key, *(c.key for c in changed)}
    assert len(keys) == 4
    # The label channel is computed from the cached mask: same key, same cache.
    for label_channel in ("mask", None):
        assert LesionCrops(cache_dir=None, label_channel=label_channel, **CROP).key == base.key
    monkeypatch.setattr(crops_module, "CROP_VERSION", "test-bump")
    assert LesionCrops(cache_dir=None, **CROP).key != base.key


def test_no_label_channel_gives_ct_only(tmp_path: Path):
    image, mask = _write_patient(tmp_path, IDENTITY)
    with_mask, _ = LesionCrops(cache_dir=tmp_path, progress=False, **CROP)(_cohort(image, mask))
    ct_only, _ = LesionCrops(cache_dir=tmp_path, label_channel=None, progress=False, **CROP)(
        _cohort(image, mask)
    )
    assert ct_only.shape == (2, 1, 32, 32, 32)
    np.testing.assert_array_equal(ct_only[:, 0], with_mask[:, 0])


def test_distance_channel_is_the_signed_distance_to_the_lesion_surface(tmp_path: Path):
    """Negative inside, zero at the surface, mm / DISTANCE_SCALE_MM outside, clipped at 1."""
    image, mask = _write_patient(tmp_path, IDENTITY)
    cohort = _cohort(image, mask, labels=(1,))
    (distance,), _ = LesionCrops(cache_dir=None, progress=False, **CROP)(cohort)
    (masked,), _ = LesionCrops(cache_dir=None, progress=False, **MASKED)(cohort)
    d_mm = distance[1] * DISTANCE_SCALE_MM
    inside = masked[1] > 0
    assert (d_mm[inside] < 0).all() and (d_mm[~inside] > 0).all()
    # Outwards along x from the lesion, the distance grows with the mm beyond the radius.
    c = 16
    xs = np.arange(32) * 1.5 - 15.5 * 1.5  # mm from the cube centre, along +x
    outside = xs > RADIUS_MM + 1.5
    np.testing.assert_allclose(d_mm[outside, c, c], xs[outside] - RADIUS_MM, atol=1.6)
    assert -RADIUS_MM - 1.5 < d_mm[c, c, c] < -0.5 * RADIUS_MM  # the centre is deep inside
    assert distance[1].max() <= 1.0 and distance[1].min() >= -1.0


def test_a_missing_mask_label_names_the_lesion(tmp_path: Path):
    image, mask = _write_patient(tmp_path, IDENTITY)
    with pytest.raises(
        CropError, match=r"mask_label 7 of lesion 'P1-L7'.*labels present: \[1, 2\]"
    ):
        LesionCrops(cache_dir=None, progress=False, **CROP)(_cohort(image, mask, labels=(1, 7)))


def _coordinates(n: int = 2, channels: int = 2, size: int = 9) -> np.ndarray:
    """Crops whose value encodes its own position: 10000*x + 100*y + z (+ 1e6 * channel)."""
    x, y, z = np.meshgrid(*(np.arange(size),) * 3, indexing="ij")
    cube = (10000 * x + 100 * y + z).astype(np.float32)
    return np.stack([np.stack([cube + 1e6 * c for c in range(channels)])] * n)


def test_orthogonal_views_are_the_three_planes_through_the_centre():
    crops = _coordinates()
    views = views_25d(crops, mode="orthogonal")
    assert views.shape == (2, 6, 9, 9) and isinstance(views, np.ndarray)
    assert view_channels(2, "orthogonal") == 6
    mid = 4
    x, y, z = views // 10000 % 100, views // 100 % 100, views % 100
    channel = views // 1e6
    # Plane by plane, CT then mask: axial (z = mid), coronal (y = mid), sagittal (x = mid).
    assert (z[:, 0:2] == mid).all() and (y[:, 2:4] == mid).all() and (x[:, 4:6] == mid).all()
    np.testing.assert_array_equal(channel[0, :, 0, 0], [0, 1, 0, 1, 0, 1])
    # Each plane spans the other two axes fully.
    assert set(np.unique(x[:, 0])) == set(range(9)) and set(np.unique(y[:, 0])) == set(range(9))


def test_axial_views_are_adjacent_slices_around_the_centre():
    crops = torch.from_numpy(_coordinates(channels=1))
    views = views_25d(crops, mode="axial", n_slices=5)
    assert isinstance(views, torch.Tensor) and views.shape == (2, 5, 9, 9)
    assert view_channels(1, "axial", 5) == 5
    slices = (views % 100)[0, :, 0, 0].tolist()
    assert slices == [2, 3, 4, 5, 6]
    with pytest.raises(ValueError, match="mode"):
        views_25d(crops, mode="coronal")


@pytest.mark.slow  # ~20 s
def test_a_process_pool_gives_the_same_crops(tmp_path: Path, monkeypatch):
    image, mask = _write_patient(tmp_path, IDENTITY)
    patients = [f"P{i}" for i in range(1, 4)]
    lesions = pd.DataFrame(
        {"patient_id": patients, "mask_label": [1, 2, 1], "site": "lung", "irradiated": 0},
        index=pd.Index([f"{p}-L" for p in patients], name="lesion_id"),
    )
    cohort = Cohort(
        "synthetic",
        pd.DataFrame({"arm": ["io"] * 3}, index=pd.Index(patients, name="patient_id")),
        lesions,
        dict.fromkeys(patients, image),
        dict.fromkeys(patients, mask),
        {p: f"sha256:{p}" for p in patients},
    )
    serial, ids = LesionCrops(cache_dir=None, workers=1, progress=False, **CROP)(cohort)
    monkeypatch.setattr(crops_module, "POOL_STARTUP_S", 0.0)  # always worth a pool
    pooled, ids_pooled = LesionCrops(cache_dir=None, workers=2, progress=False, **CROP)(cohort)
    assert ids_pooled == ids
    np.testing.assert_array_equal(pooled, serial)
    np.testing.assert_array_equal(serial[0], serial[2])  # same lesion, same crop


# ---- the crops of the implementation before issue 27, kept as the reference ---------------------
# It loaded and reoriented both volumes whole with MONAI and summed the indices of every voxel for
# the centroids (1-4 s per patient at 512²); the fast path must give its crops to the last bit.


def _reference_crop_patient(image_path, mask_path, spacing_mm, size, hu_window):
    from monai.transforms import (
        Compose,
        EnsureChannelFirstd,
        LoadImaged,
        Orientationd,
        ScaleIntensityRanged,
        Spacingd,
        SpatialCrop,
    )

    keys = ("image", "mask")
    with warnings.catch_warnings():  # MONAI's DICOM reader: no GPU decoder (not used here)
        warnings.filterwarnings("ignore", "NvImgCodecPydicomReader", UserWarning)
        loader = LoadImaged(keys, image_only=True)
    load = Compose(
        [
            loader,
            EnsureChannelFirstd(keys),
            Orientationd(keys, axcodes="RAS", labels=None),
        ]
    )
    resample = Compose(
        [
            Spacingd(
                keys, pixdim=(spacing_mm,) * 3, mode=("bilinear", "nearest"), dtype=np.float32
            ),
            ScaleIntensityRanged(
                "image", a_min=hu_window[0], a_max=hu_window[1], b_min=0.0, b_max=1.0, clip=True
            ),
        ]
    )
    item = load({"image": str(image_path), "mask": str(mask_path)})
    image, labelmap = item["image"], item["mask"]
    affine = np.asarray(labelmap.affine, dtype=np.float64)
    labels_array = np.asarray(labelmap[0]).round().astype(np.int64)
    flat = labels_array.ravel()
    counts = np.bincount(flat)
    grids = np.unravel_index(np.arange(flat.size), labels_array.shape)
    sums = [np.bincount(flat, weights=g, minlength=len(counts)) for g in grids]
    centres = {
        int(k): (affine @ np.append(np.array([s[k] for s in sums]) / counts[k], 1.0))[:3]
        for k in np.flatnonzero(counts)
        if k > 0
    }
    to_voxel = np.linalg.inv(affine)
    acquired_mm = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    reach = size * spacing_mm / 2 / acquired_mm + 2
    shape = np.asarray(image.shape[1:])
    labels = sorted(centres)
    cts, masks = [], []
    for label in labels:
        centre = np.append(centres[label], 1.0)
        voxel = (to_voxel @ centre)[:3]
        lo = np.clip(np.floor(voxel - reach), 0, shape).astype(int).tolist()
        hi = np.clip(np.ceil(voxel + reach) + 1, 0, shape).astype(int).tolist()
        box = SpatialCrop(roi_start=lo, roi_end=hi)
        lesion = (box(labelmap).round() == label).float()
        sub = resample({"image": box(image), "mask": lesion})
        at = (np.linalg.inv(np.asarray(sub["image"].affine, dtype=np.float64)) @ centre)[:3]
        cts.append(crops_module._cube(sub["image"], at, size)[0])
        masks.append(crops_module._cube(sub["mask"], at, size)[0])
    return {
        "labels": np.asarray(labels, dtype=np.int64),
        "ct": torch.stack(cts).numpy().astype(np.float16),
        "mask": torch.stack(masks).numpy().round().astype(np.uint8),
        "centre_mm": np.asarray([centres[k] for k in labels], dtype=np.float64).reshape(-1, 3),
    }


def _assert_same_crops(image: Path, mask: Path, spacing_mm: float, size: int) -> dict:
    window = (-1000.0, 400.0)
    fast = crop_patient(str(image), str(mask), spacing_mm, size, window)
    reference = _reference_crop_patient(image, mask, spacing_mm, size, window)
    assert len(reference["labels"]) > 0
    for name, expected in reference.items():
        np.testing.assert_array_equal(fast[name], expected, err_msg=name)
    for i, lesion in enumerate(fast["mask"]):
        np.testing.assert_array_equal(fast["distance"][i], scaled_distance(lesion, spacing_mm))
    return fast


# cpu and gpu presets (conf/hardware), and an odd size: the cube's centre falls between voxels.
SETTINGS = [(2.0, 32), (1.0, 64), (1.5, 31)]


@pytest.mark.parametrize("direction", [IDENTITY, FLIPPED], ids=["identity", "flipped"])
@pytest.mark.parametrize(("spacing_mm", "size"), SETTINGS)
def test_crops_are_the_reference_implementations(tmp_path: Path, direction, spacing_mm, size):
    image, mask = _write_patient(tmp_path, direction)
    fast = _assert_same_crops(image, mask, spacing_mm, size)
    assert fast["labels"].tolist() == [1, 2]


def test_a_float_mask_is_read_as_the_reference_reads_it(tmp_path: Path):
    """Labels stored as floats (a resampled mask): rounded as MONAI's path rounded them, values
    up to 0.5 away from a label included and exactly 0.5 rounding to 0."""
    image, mask = _write_patient(tmp_path, FLIPPED)
    stored = sitk.ReadImage(str(mask))
    labels = sitk.GetArrayFromImage(stored).astype(np.float32)
    rng = np.random.default_rng(0)
    labels += rng.uniform(-0.45, 0.45, labels.shape).astype(np.float32)
    labels[0, 0, :4] = 0.5
    noisy = sitk.GetImageFromArray(labels)
    noisy.CopyInformation(stored)
    sitk.WriteImage(noisy, str(mask))
    _assert_same_crops(image, mask, 2.0, 32)


def test_simulated_patients_crop_as_the_reference(tiny_cohorts):
    cohort = tiny_cohorts["nivorad"].cohort
    for pid in cohort.patient_ids[:3]:
        _assert_same_crops(cohort.images[pid], cohort.masks[pid], 2.0, 32)


@pytest.mark.parametrize("case", ["lung1", pytest.param("lung2", marks=pytest.mark.slow)])
def test_clinical_ct_crops_as_the_reference(lung_root, case: str):
    """pyradiomics' real lung CTs (512x512, LPS on disk): the fast path reads a box of the CT,
    the reference both volumes whole; both presets give the same crops."""
    root = lung_root(case) / "pembro_rt"
    patient = f"PRT-{case.upper()}"
    for spacing_mm, size in SETTINGS[:2]:
        _assert_same_crops(
            root / "images" / f"{patient}.nii.gz",
            root / "masks" / f"{patient}.nii.gz",
            spacing_mm,
            size,
        )
