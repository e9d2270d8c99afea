"""benchmark.features.radiomics: per-lesion pyradiomics features, on-disk cache, parallel runs."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from omegaconf import OmegaConf

from benchmark.api.cohort import Cohort
from benchmark.features import radiomics as rad
from benchmark.features.radiomics import RadiomicsExtractionError, RadiomicsExtractor

CONF = Path(__file__).resolve().parents[2] / "conf" / "radiomics" / "default.yaml"
SPACING = (1.0, 1.0, 3.0)  # x, y, z (mm)
SIZE_ZYX = (16, 44, 44)
BACKGROUND_HU = -100.0
# patient -> [(mask_label, centre (x, y, z) in mm, radius mm, HU)]
SPHERES = {
    "P1": [(1, (13.0, 13.0, 24.0), 8.0, 40.0), (2, (31.0, 31.0, 22.0), 6.0, 120.0)],
    "P2": [(1, (22.0, 22.0, 25.0), 9.0, 70.0)],
}
# lesion_id -> (patient, mask_label); deliberately not in patient/label order
LESIONS = {"P2-L1": ("P2", 1), "P1-L2": ("P1", 2), "P1-L1": ("P1", 1)}
CLASSES = ["shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm"]


def _sphere_of(lesion_id: str) -> tuple[float, float]:
    patient, label = LESIONS[lesion_id]
    (_, _, radius, hu) = next(s for s in SPHERES[patient] if s[0] == label)
    return radius, hu


def _write_patient(folder: Path, patient: str, seed: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*(np.arange(n, dtype=float) for n in SIZE_ZYX), indexing="ij")
    xs, ys, zs = (x + 0.5) * SPACING[0], (y + 0.5) * SPACING[1], (z + 0.5) * SPACING[2]
    hu = rng.normal(BACKGROUND_HU, 15.0, SIZE_ZYX)
    labels = np.zeros(SIZE_ZYX, dtype=np.uint8)
    for label, (cx, cy, cz), radius, value in SPHERES[patient]:
        inside = (xs - cx) ** 2 + (ys - cy) ** 2 + (zs - cz) ** 2 <= radius**2
        hu[inside] = rng.normal(value, 10.0, int(inside.sum()))
        labels[inside] = label
    image = sitk.GetImageFromArray(np.round(hu).astype(np.int16))
    image.SetSpacing(SPACING)
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(image)
    image_path, mask_path = folder / f"{patient}_ct.nii.gz", folder / f"{patient}_mask.nii.gz"
    sitk.WriteImage(image, str(image_path))
    sitk.WriteImage(mask, str(mask_path))
    return image_path, mask_path


def _cohort(files: dict[str, tuple[Path, Path]], lesions: dict[str, tuple[str, int]]) -> Cohort:
    patients = pd.DataFrame(
        {"arm": ["io", "io+sabr"], "pdl1_tps": [1.0, 50.0], "age": [60, 70], "sex": ["m", "f"],
         "ecog": [0, 1]},
        index=pd.Index(["P1", "P2"], name="patient_id"),
    )  # fmt: skip
    table = pd.DataFrame(
        {
            "patient_id": [p for p, _ in lesions.values()],
            "mask_label": [lab for _, lab in lesions.values()],
            "site": "lung",
            "irradiated": 0,
        },
        index=pd.Index(list(lesions), name="lesion_id"),
    )
    return Cohort(
        name="synth",
        patients=patients,
        lesions=table,
        images={p: files[p][0] for p in patients.index},
        masks={p: files[p][1] for p in patients.index},
        content_keys={"P1": "content-p1", "P2": "content-p2"},
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("synth")
    return {p: _write_patient(folder, p, seed) for seed, p in enumerate(SPHERES)}


@pytest.fixture(scope="module")
def cohort(files) -> Cohort:
    return _cohort(files, LESIONS)


SETTINGS = {
    "resampledPixelSpacing": [1.0, 1.0, 1.0],
    "interpolator": "sitkBSpline",
    "binWidth": 25,
    "padDistance": 5,
    "preCrop": True,
    "correctMask": True,
    "normalize": False,
}


def _extractor(cache_dir, **overrides) -> RadiomicsExtractor:
    kwargs = {
        "settings": dict(SETTINGS),
        "feature_classes": CLASSES,
        "image_types": {"Original": {}},
        "cache_dir": cache_dir,
        "workers": 1,
        "progress": False,
    }
    kwargs.update(overrides)
    return RadiomicsExtractor(**kwargs)


@pytest.fixture(scope="module")
def reference(cohort) -> pd.DataFrame:
    """Features of the synthetic cohort, workers=1, no cache."""
    return _extractor(None)(cohort)


def test_frame_shape_and_plausible_values(reference, cohort):
    frame = reference
    assert list(frame.index) == list(LESIONS)  # cohort order, not patient/label order
    assert frame.index.name == "lesion_id"
    assert frame.shape[1] > 90
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    assert not frame.isna().any().any()
    assert not any(c.startswith("diagnostics_") for c in frame.columns)
    for cls in CLASSES:
        assert any(c.startswith(f"original_{cls}_") for c in frame.columns), cls

    for lesion_id in LESIONS:
        radius, hu = _sphere_of(lesion_id)
        volume = 4.0 / 3.0 * math.pi * radius**3
        got = frame.loc[lesion_id, "original_shape_MeshVolume"]
        assert got == pytest.approx(volume, rel=0.15), lesion_id
        # edge voxels mix in background through interpolation: the median is the sharper check
        assert frame.loc[lesion_id, "original_firstorder_Median"] == pytest.approx(hu, abs=8)
        assert frame.loc[lesion_id, "original_firstorder_Mean"] == pytest.approx(hu, abs=25)
    # each lesion got its own label: the sizes are ordered as the radii
    vols = frame["original_shape_MeshVolume"]
    assert vols["P2-L1"] > vols["P1-L1"] > vols["P1-L2"]


def test_progress_bar_names_cohort(cohort, capsys):
    _extractor(None, progress=True, feature_classes=["firstorder"])(cohort)
    assert "radiomics synth" in capsys.readouterr().err


def test_cache_is_reused_without_reading_images(reference, cohort, tmp_path, monkeypatch):
    first = _extractor(tmp_path)(cohort)
    pd.testing.assert_frame_equal(first, reference)

    extractor = _extractor(tmp_path)  # a fresh instance, as in a second run
    folder = tmp_path / extractor.key
    files = sorted(p.name for p in folder.iterdir() if p.name != ".lock")  # .lock: writers' lock
    assert files == ["content-p1.json", "content-p2.json", "extractor.json"]  # no temp files left

    def no_read(*args, **kwargs):
        raise AssertionError("image read on a cache hit")

    monkeypatch.setattr(sitk, "ReadImage", no_read)
    monkeypatch.setattr(rad, "_extract_patient", no_read)
    second = extractor(cohort)
    pd.testing.assert_frame_equal(second, first, check_exact=True)


def test_cache_holds_features_by_mask_label(cohort, tmp_path):
    extractor = _extractor(tmp_path, feature_classes={"firstorder": ["Mean", "Median"]})
    frame = extractor(cohort)
    import json

    payload = json.loads(extractor.cache_path("content-p1").read_text())
    assert payload["extractor_key"] == extractor.key
    assert set(payload["features"]) == {"1", "2"}
    assert payload["features"]["2"]["original_firstorder_Mean"] == frame.loc["P1-L2"].iloc[0]
    assert list(frame.columns) == ["original_firstorder_Mean", "original_firstorder_Median"]


def test_setting_change_changes_key_and_recomputes(cohort, tmp_path, monkeypatch):
    base = _extractor(tmp_path)
    frame = base(cohort)
    changed = _extractor(tmp_path, settings={**SETTINGS, "binWidth": 10})
    assert changed.key != base.key
    assert _extractor(tmp_path).key == base.key  # stable across instances

    reads = []
    real_read = sitk.ReadImage
    monkeypatch.setattr(sitk, "ReadImage", lambda *a, **k: reads.append(a) or real_read(*a, **k))
    other = changed(cohort)
    assert len(reads) == 4  # image + mask of both patients: recomputed, not served from cache
    assert (tmp_path / changed.key / "content-p1.json").is_file()
    # grey-level binning changes texture, not shape
    glcm = [c for c in frame.columns if c.startswith("original_glcm_")]
    assert not np.allclose(other[glcm].to_numpy(), frame[glcm].to_numpy())
    pd.testing.assert_series_equal(
        other["original_shape_MeshVolume"], frame["original_shape_MeshVolume"]
    )


def test_key_ignores_label_and_setting_order():
    a = _extractor(None, settings=dict(reversed(list(SETTINGS.items()))))
    b = _extractor(None, settings={**SETTINGS, "label": 7})
    c = _extractor(None, feature_classes=list(reversed(CLASSES)))
    assert a.key == b.key == _extractor(None).key
    assert c.key != a.key  # class order orders the columns: it is part of the key
    assert "label" not in b.settings


def test_invalid_setting_fails_at_construction():
    with pytest.raises(ValueError, match="invalid pyradiomics configuration"):
        _extractor(None, settings={**SETTINGS, "binWidth": -1})


def test_construction_logs_pykwalify_errors_but_not_its_validation_info(caplog):
    """pykwalify's INFO ``validation.valid`` came once per fit into the progress bars; its
    errors about an invalid configuration must still show."""
    logging.getLogger("pykwalify").setLevel(logging.NOTSET)  # as in a fresh process
    caplog.set_level(logging.INFO)
    _extractor(None)
    assert "validation.valid" not in caplog.text
    assert not [r for r in caplog.records if r.name.startswith("pykwalify")]
    with pytest.raises(ValueError, match="invalid pyradiomics configuration"):
        _extractor(None, settings={**SETTINGS, "binWidth": -1})
    errors = [r for r in caplog.records if r.name.startswith("pykwalify")]
    assert errors and all(r.levelno >= logging.ERROR for r in errors)


def test_two_workers_match_one(reference, cohort):
    parallel = _extractor(None, workers=2)(cohort)
    pd.testing.assert_frame_equal(parallel, reference, check_exact=True)


def test_cropped_extraction_matches_plain_pyradiomics(files, reference):
    """The image (not the mask) is cropped around each lesion before resampling, for speed; the
    resampling grid is pyradiomics' own, so shape is identical and grey levels differ only by
    floating-point noise (which ITK's truncation to int16 turns into +-1 HU on some voxels)."""
    extractor = _extractor(None)
    plain = rad.build_pyradiomics(extractor.params)
    image_path, mask_path = files["P1"]
    full = plain.execute(sitk.ReadImage(str(image_path)), sitk.ReadImage(str(mask_path)), label=2)
    expected = pd.Series({k: float(v) for k, v in full.items() if not k.startswith("diagnostics_")})
    got = reference.loc["P1-L2"]
    assert list(got.index) == list(expected.index)
    shape = [c for c in got.index if c.startswith("original_shape_")]
    np.testing.assert_allclose(got[shape], expected[shape], rtol=1e-12)
    name = "original_firstorder_Mean"
    assert got[name] == pytest.approx(expected[name], abs=1.0)
    np.testing.assert_allclose(got, expected, rtol=0.05, atol=1e-6)


def test_absent_label_names_the_lesion(files):
    bad = _cohort(files, {**LESIONS, "P2-L9": ("P2", 9)})
    with pytest.raises(RadiomicsExtractionError) as info:
        _extractor(None)(bad)
    message = str(info.value)
    assert "P2-L9" in message and "'P2'" in message and "P2_mask.nii.gz" in message


def test_too_small_lesion_error_names_the_lesion(tmp_path):
    image = sitk.GetImageFromArray(np.zeros((8, 8, 8), dtype=np.int16))
    mask_arr = np.zeros((8, 8, 8), dtype=np.uint8)
    mask_arr[4, 4, 4] = 1  # a single voxel: pyradiomics refuses it (minimumROIDimensions)
    mask = sitk.GetImageFromArray(mask_arr)
    sitk.WriteImage(image, str(tmp_path / "P1_ct.nii.gz"))
    sitk.WriteImage(mask, str(tmp_path / "P1_mask.nii.gz"))
    files = {p: (tmp_path / "P1_ct.nii.gz", tmp_path / "P1_mask.nii.gz") for p in ("P1", "P2")}
    with pytest.raises(RadiomicsExtractionError, match=r"lesion 'tiny'.*patient 'P1'"):
        _extractor(None)(_cohort(files, {"tiny": ("P1", 1)}))


def test_hydra_config_instantiates(cohort, tmp_path):
    from hydra.utils import instantiate

    cfg = OmegaConf.create(
        {
            "paths": {"cache_dir": str(tmp_path)},
            "hardware": {"workers": 1},
            "radiomics": OmegaConf.load(CONF),
        }
    )
    extractor = instantiate(cfg.radiomics, progress=False)
    assert isinstance(extractor, RadiomicsExtractor)
    assert extractor.cache_dir == tmp_path / "radiomics"
    assert extractor.settings["resampledPixelSpacing"] == [1.0, 1.0, 1.0]
    assert list(extractor.feature_classes) == CLASSES
    frame = extractor(cohort.subset(["P2"]))
    assert list(frame.index) == ["P2-L1"]
    assert (tmp_path / "radiomics" / extractor.key / "content-p2.json").is_file()
