"""What a site's real data can hold that would corrupt a run: each case refused, naming the file.

Every case breaks one thing in a small valid cohort (tests/cohort_factory.py) and checks that
validation reports it with its file, row and id, and reports nothing else; the valid cohort,
the real lung CTs and (through tests/conftest.py) the simulator's tiny profile pass.
"""

from __future__ import annotations

import gzip
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import yaml
from cohort_factory import (
    Case,
    header_fields,
    make_dataset,
    patch_header,
    reported,
    rewrite_volume,
    write_volume,
)

from benchmark.data import layout
from benchmark.data.layout.images import FileCache
from benchmark.data.layout.lesions import (
    RADIOMICS_MIN_DIMS,
    RADIOMICS_SPACING_MM,
    LesionSize,
    lesion_sizes,
)
from benchmark.data.layout.values import NonFinite

REPO = Path(__file__).resolve().parents[2]
PR = "pembro_rt"
IMAGE, MASK = f"{PR}/images/PR002.nii.gz", f"{PR}/masks/PR002.nii.gz"
L_CSV = f"{PR}/lesions.csv"


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site") / "data"
    make_dataset(root, cohorts=(PR,))
    return root


@pytest.fixture
def data(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of a valid one-cohort dataset, to break."""
    root = tmp_path / "data"
    shutil.copytree(template, root)
    return root


def test_the_valid_cohort_passes(data: Path) -> None:
    assert layout.validate(data, [PR]) == []


# ---------------------------------------------------------------------------------------------
# One case per problem


def _voxels(rel: str, edit: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    return lambda root: rewrite_volume(root / rel, edit)


def _header(*rels: str, **fields: object) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        for rel in rels:
            patch_header(root / rel, **fields)

    return mutate


def _bytes_at(rel: str, offset: int, data: bytes) -> Callable[[Path], None]:
    """Overwrite bytes of a file's (decompressed) header."""

    def mutate(root: Path) -> None:
        raw = bytearray(gzip.decompress((root / rel).read_bytes()))
        raw[offset : offset + len(data)] = data
        (root / rel).write_bytes(gzip.compress(bytes(raw)))

    return mutate


def _with_nan_and_inf(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32)
    a[5, 0, 0] = np.inf
    a[2, 3, 4] = np.nan  # (z, y, x): the first in file order, reported as voxel (4, 3, 2)
    return a


def _float_mask_with_nan(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32)
    a[0, 0, 1] = np.nan
    return a


def _negative_corner(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.int16)
    a[0, 0, 0] = -1
    return a


def _sform_shifted(root: Path) -> None:
    path = root / IMAGE
    x = header_fields(path)["srow_x"]
    patch_header(path, sform_code=2, srow_x=(x[0], x[1], x[2], x[3] + 40.0))


def _sform_scaled(root: Path) -> None:
    path = root / IMAGE
    x = header_fields(path)["srow_x"]
    patch_header(path, qform_code=0, srow_x=(2 * x[0], x[1], x[2], x[3]))


def _qfac(qfac: float) -> Callable[[Path], None]:
    """The image's qform alone, with pixdim[0] (its handedness) set to ``qfac``."""

    def mutate(root: Path) -> None:
        pixdim = header_fields(root / IMAGE)["pixdim"]
        patch_header(root / IMAGE, sform_code=0, pixdim=(qfac, *pixdim[1:]))

    return mutate


def _zero_pixdim(root: Path) -> None:
    pixdim = header_fields(root / IMAGE)["pixdim"]
    patch_header(root / IMAGE, pixdim=(pixdim[0], 0.0, *pixdim[2:]))


def _spacing(spacing: tuple[float, float, float]) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        for rel in (IMAGE, MASK):
            rewrite_volume(root / rel, spacing=spacing, origin=(0.0, 0.0, 0.0))

    return mutate


def _four_d(volumes: int) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        image = sitk.ReadImage(str(root / IMAGE))
        sitk.WriteImage(sitk.JoinSeries([image] * volumes), str(root / IMAGE), True)

    return mutate


def _lesion(voxels: list[tuple[int, int, int]], spacing: float | None = None):
    """PR001's one lesion (label 1) replaced by ``voxels`` (x, y, z); in-plane ``spacing`` mm."""

    def mutate(root: Path) -> None:
        def edit(a: np.ndarray) -> np.ndarray:
            a = np.zeros_like(a)
            for x, y, z in voxels:
                a[z, y, x] = 1
            return a

        geometry = {} if spacing is None else {"spacing": (spacing, spacing, 2.5)}
        rewrite_volume(root / PR / "masks" / "PR001.nii.gz", edit, **geometry)
        if geometry:
            rewrite_volume(root / PR / "images" / "PR001.nii.gz", **geometry)

    return mutate


def _duplicate(root: Path) -> None:
    shutil.copy(root / PR / "images" / "PR001.nii.gz", root / IMAGE)


CASES = {
    "non-finite image voxels": Case(
        _voxels(IMAGE, _with_nan_and_inf),
        IMAGE,
        "image has 2 non-finite voxels (NaN or infinite), the first at voxel (4, 3, 2); "
        "expected finite HU values",
    ),
    "non-finite mask voxel": Case(
        _voxels(MASK, _float_mask_with_nan),
        MASK,
        "mask has 1 non-finite voxel (NaN or infinite), the first at voxel (1, 0, 0); "
        "expected finite labels",
    ),
    "8-bit image": Case(
        _voxels(IMAGE, lambda a: np.clip(a + 900, 0, 255).astype(np.uint8)),
        IMAGE,
        "image stores 8-bit unsigned voxels (at most 256 levels)",
    ),
    "complex image": Case(
        _voxels(IMAGE, lambda a: a.astype(np.complex64)),
        IMAGE,
        "image stores complex voxels; expected real HU values",
    ),
    "stored values without their intercept": Case(
        _voxels(IMAGE, lambda a: a + 1024),
        IMAGE,
        "image has no voxel below -500 HU (min 1",
    ),
    "blank image": Case(
        _voxels(IMAGE, lambda a: np.full_like(a, -1024)),
        IMAGE,
        "image has no voxel above 0 HU (min -1024, max -1024)",
    ),
    "wrong rescale slope": Case(
        _voxels(IMAGE, lambda a: a.astype(np.int32) * 100),
        IMAGE,
        "image has values outside [-32768, 32767]",
    ),
    "implausible spacing": Case(
        _spacing((25.0, 25.0, 25.0)),
        IMAGE,
        "image has voxel spacing (25, 25, 25) mm; expected 0.1 to 20 mm",
    ),
    "lengths in metres": Case(
        _header(IMAGE, MASK, xyzt_units=1 | 8),
        IMAGE,
        "image gives lengths in metres (xyzt_units 9); expected mm or unset",
        count=2,  # the mask says the same
    ),
    "zero voxel size": Case(
        _zero_pixdim,
        IMAGE,
        "image has voxel size (pixdim) (0, 0.8, 2.5); expected positive finite sizes",
        count=2,  # and SimpleITK's spacing (1 mm) then differs from the mask's
    ),
    "intercept without a slope": Case(
        _header(IMAGE, scl_slope=0.0, scl_inter=-1024.0),
        IMAGE,
        "image has scl_slope 0 and scl_inter -1024; expected a finite slope and intercept",
    ),
    "NaN intercept": Case(
        _header(IMAGE, scl_slope=1.0, scl_inter=math.nan),
        IMAGE,
        "image has scl_slope 1 and scl_inter nan",
    ),
    "no orientation": Case(
        _header(IMAGE, MASK, qform_code=0, sform_code=0),
        MASK,
        "mask has neither a qform nor an sform (both codes 0)",
        count=2,  # and the image
    ),
    "no NIfTI magic": Case(
        _bytes_at(IMAGE, 344, b"\0\0\0\0"),
        IMAGE,
        "image has no NIfTI magic (an ANALYZE 7.5 header?)",
        count=2,  # and SimpleITK, reading it as ANALYZE, puts its origin at 0, not the mask's
    ),
    "qform and sform disagree": Case(
        _sform_shifted,
        IMAGE,
        "image has a qform and an sform that place voxel (0, 0, 0) 40 mm apart",
    ),
    "readers place the voxels differently": Case(
        _sform_scaled,
        IMAGE,
        "image is placed differently by SimpleITK and nibabel (voxel (19, 0, 0) 15.2 mm apart",
    ),
    "a qfac the readers take differently": Case(
        _qfac(-0.5),
        IMAGE,
        "image is placed differently by SimpleITK and nibabel (voxel (0, 0, 9) 45 mm apart",
        count=2,  # and SimpleITK's z axis, flipped, is not the mask's
    ),
    "4-D image": Case(
        _four_d(2),
        IMAGE,
        "image is 4-D; expected a 3-D volume",
    ),
    "negative label": Case(
        _voxels(MASK, lambda a: _negative_corner(a)),
        MASK,
        "mask has negative values (min -1)",
    ),
    "lesion vanishes on the radiomics grid": Case(
        _lesion([(2, 2, 5), (3, 2, 5), (2, 3, 5), (3, 3, 5)], spacing=0.3),
        L_CSV,
        "mask_label 1 in pembro_rt/masks/PR001.nii.gz vanishes on the 1 mm grid radiomics "
        "resamples to (4 voxels, 0.9 mm³)",
        2,
        "mask_label",
        "PR001-L1",
    ),
    "lesion is one voxel": Case(
        _lesion([(5, 5, 3)]),
        L_CSV,
        "mask_label 1 in pembro_rt/masks/PR001.nii.gz spans fewer than 2 axes on the 1 mm grid "
        "radiomics resamples to (1 voxel, 1.6 mm³: a dot or a line",
        2,
        "mask_label",
        "PR001-L1",
    ),
    "lesion is a line": Case(
        _lesion([(5, 5, z) for z in range(2, 7)]),
        L_CSV,
        "spans fewer than 2 axes on the 1 mm grid radiomics resamples to (5 voxels",
        2,
        "mask_label",
        "PR001-L1",
    ),
    "one scan under two patient ids": Case(
        _duplicate,
        IMAGE,
        "image is identical to pembro_rt/images/PR001.nii.gz (patient PR001): one scan under "
        "two patient ids",
        id="PR002",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_site_data_is_refused(data: Path, name: str) -> None:
    case = CASES[name]
    case.mutate(data)
    problems = layout.validate(data, [PR])
    reported(problems, case)
    with pytest.raises(layout.CohortError):
        layout.fingerprint(data, [PR])


def test_a_3d_volume_stored_as_4d_with_one_volume_is_accepted(data: Path) -> None:
    """Both readers see it as the same 3-D volume (the crops' loader adds no axis)."""
    for rel in (IMAGE, MASK):
        patch_header(data / rel, dim=(4, 20, 20, 10, 1, 1, 1, 1))
    assert layout.validate(data, [PR]) == []


def test_a_qfac_of_0_is_taken_as_1_by_both_readers(data: Path) -> None:
    _qfac(0.0)(data)
    assert layout.validate(data, [PR]) == []


def test_a_qform_and_sform_that_agree_are_accepted(data: Path) -> None:
    assert header_fields(data / IMAGE)["qform_code"] == (1,)
    patch_header(data / IMAGE, sform_code=2)  # aligned-anat code, same matrix as the qform
    assert layout.validate(data, [PR]) == []


# ---------------------------------------------------------------------------------------------
# Non-finite voxels: wherever the stream splits them, and in an uncompressed file


def test_non_finite_voxels_are_counted_across_any_split() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=999).astype(">f8")  # big-endian: the header's byte order is used
    values[[3, 500, 998]] = [np.nan, np.inf, -np.inf]
    offset = 352
    blob = bytes(offset) + values.tobytes() + b"extension"
    for _ in range(20):
        counter = NonFinite(values.dtype, offset, values.size)
        cuts = sorted(rng.integers(0, len(blob), 6).tolist())
        for lo, hi in zip([0, *cuts], [*cuts, len(blob)], strict=True):
            counter.feed(blob[lo:hi], lo)
        assert (counter.count, counter.first) == (3, 3)


def test_non_finite_voxels_of_an_uncompressed_file_are_found(data: Path) -> None:
    rewrite_volume(data / IMAGE, _with_nan_and_inf)
    path = data / IMAGE
    path.write_bytes(gzip.decompress(path.read_bytes()))  # a plain .nii under the .gz name
    problems = layout.validate(data, [PR])
    assert [(p.file, "2 non-finite voxels" in p.message) for p in problems] == [(IMAGE, True)]


def test_a_cache_entry_from_before_the_checks_does_not_pass_a_bad_file(
    data: Path, tmp_path: Path
) -> None:
    """An entry of the cache's first version holds no voxel-value checks: it is not reused."""
    assert layout.CACHE_VERSION != "layout-v1"
    rewrite_volume(data / IMAGE, _with_nan_and_inf)
    cache = tmp_path / "cache"
    entry, ident = FileCache(cache)._entry(data / IMAGE, False)  # type: ignore[misc]
    clean = sitk.ReadImage(str(data / IMAGE))  # what the first version saw: NaN read as 0
    info = {
        "key": "sha256:" + "0" * 64,
        "geometry": {"dimension": 3, "size": list(clean.GetSize())},
        "labels": None,
        "issues": [],
    }
    old = cache / "layout-v1" / entry.name
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"ident": ident, "info": info}))
    problems = layout.validate(data, [PR], cache_dir=cache)
    assert [p.file for p in problems] == [IMAGE]
    assert "non-finite" in problems[0].message
    assert layout.validate(data, [PR], cache_dir=cache) == problems  # and from the new entry


# ---------------------------------------------------------------------------------------------
# Lesion sizes: the radiomics grid, checked against pyradiomics itself


def test_the_grid_is_the_harness_radiomics_settings() -> None:
    conf = yaml.safe_load((REPO / "conf" / "radiomics" / "default.yaml").read_text())
    assert conf["settings"]["resampledPixelSpacing"] == [RADIOMICS_SPACING_MM] * 3
    assert conf["settings"]["minimumROIDimensions"] == RADIOMICS_MIN_DIMS


def _pyradiomics_refuses(mask: np.ndarray, spacing: tuple[float, ...], label: int) -> bool:
    """Whether pyradiomics, with the harness's settings, refuses ``label`` of ``mask``."""
    from radiomics import imageoperations

    image = sitk.GetImageFromArray(np.zeros(mask.shape, np.float32))
    labels = sitk.GetImageFromArray(mask)
    for volume in (image, labels):
        volume.SetSpacing(spacing)
    settings = {
        "resampledPixelSpacing": [RADIOMICS_SPACING_MM] * 3,
        "interpolator": sitk.sitkBSpline,
        "padDistance": 5,
        "label": label,
        "minimumROIDimensions": RADIOMICS_MIN_DIMS,
    }
    image, labels = imageoperations.resampleImage(image, labels, **settings)
    try:
        imageoperations.checkMask(image, labels, **settings)
    except ValueError:
        return True
    return False


@pytest.mark.parametrize(
    ("spacing", "exact"),
    [
        ((0.57, 0.63, 5.0), True),  # no rounding tie on these small grids
        ((0.8, 2.4, 1.2), True),
        ((0.3, 0.7, 0.9), False),  # ties: floating point rounds them, the check counts both
        ((0.5, 0.75, 1.5), False),
    ],
)
def test_lesion_sizes_predict_what_pyradiomics_refuses(
    spacing: tuple[float, float, float], exact: bool
) -> None:
    rng = np.random.default_rng(int(sum(spacing) * 100))
    refused = predicted = 0
    for _ in range(60):
        mask = np.zeros((6, 7, 8), np.uint8)  # z, y, x
        n = int(rng.integers(1, 5))
        start = rng.integers(0, (4, 5, 6))
        for _ in range(n):  # a few voxels near each other: a contouring slip
            z, y, x = start + rng.integers(0, 3, 3)
            mask[z, y, x] = 1
        size = lesion_sizes(mask, spacing)[1]
        fails = size.issue(1.0) is not None
        actual = _pyradiomics_refuses(mask, spacing, 1)
        refused += actual
        predicted += fails
        assert actual or not fails, f"refused a lesion pyradiomics measures: {size}"
        if exact:
            assert fails == actual, f"missed a lesion pyradiomics refuses: {size}"
    assert refused > 0 and predicted > 0  # the cases exercise both outcomes


def test_lesion_sizes_of_every_label() -> None:
    mask = np.zeros((4, 10, 10), np.uint8)
    mask[1:3, 2:8, 2:8] = 1  # 72 voxels, ample
    mask[0, 0, 0] = 2  # a dot
    assert lesion_sizes(mask, (1.0, 1.0, 1.0)) == {
        1: LesionSize(72, 72, 3),
        2: LesionSize(1, 1, 0),
    }
    assert lesion_sizes(np.zeros((2, 2, 2), np.uint8), (1.0, 1.0, 1.0)) == {}


# ---------------------------------------------------------------------------------------------
# What real sites and the simulator hold is not refused


def test_real_lung_ct_passes(real_fixtures: Path) -> None:
    assert layout.validate(real_fixtures / "lung_cohorts", [PR]) == []


def test_files_nibabel_wrote_pass(data: Path) -> None:
    """nibabel writes no qform, an aligned sform and NaN scaling (none): readers agree on them."""
    import nibabel as nib

    for rel in (IMAGE, MASK):
        image = nib.load(data / rel)
        nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj), image.affine), data / rel)
        header = nib.load(data / rel).header
        assert (int(header["qform_code"]), int(header["sform_code"])) == (0, 2)
        assert np.isnan(header["scl_slope"]) and np.isnan(header["scl_inter"])
    assert layout.validate(data, [PR]) == []


def test_a_float_ct_in_hu_passes(data: Path) -> None:
    """Float HU (a converter that applies a fractional rescale slope) is a CT like any other."""
    rewrite_volume(data / IMAGE, lambda a: a.astype(np.float32) + 0.25)
    assert layout.validate(data, [PR]) == []


def test_padding_outside_the_field_of_view_passes(data: Path) -> None:
    """Scanners pad beyond their circular field of view with values down to -3024 or lower."""
    rewrite_volume(data / IMAGE, lambda a: np.where(np.indices(a.shape)[2] == 0, -3024, a))
    assert layout.validate(data, [PR]) == []


def test_an_unscaled_uint16_image_that_says_so_passes(data: Path, tmp_path: Path) -> None:
    """Stored 0..4095 with its intercept in the header (scl_inter -1024) reads as HU."""
    image = sitk.ReadImage(str(data / IMAGE))
    write_volume(
        data / IMAGE,
        (sitk.GetArrayFromImage(image) + 1024).astype(np.uint16),
        image.GetSpacing(),
        image.GetOrigin(),
    )
    patch_header(data / IMAGE, scl_slope=1.0, scl_inter=-1024.0)
    assert layout.validate(data, [PR]) == []
