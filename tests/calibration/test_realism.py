"""The realism yardstick: each measure on inputs whose answer is known, then the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.calibration.realism.nps import noise_spectrum
from benchmark.calibration.realism.patches import PATCH, lesion_patches, parenchyma_patches
from benchmark.calibration.realism.regions import find_regions
from benchmark.calibration.realism.scans import COMMON_SPACING_MM, Scan
from benchmark.calibration.realism.two_sample import two_sample_auc


def _thorax(spacing=(1.0, 1.0, 2.5), shape=(24, 160, 200), noise=0.0, seed=0) -> Scan:
    """Air around a soft-tissue body holding two lungs (-850 HU), a lesion in the right one."""
    nz, ny, nx = shape
    zz, yy, xx = np.mgrid[:nz, :ny, :nx].astype(float)
    yy, xx = yy * spacing[1] - ny * spacing[1] / 2, xx * spacing[0] - nx * spacing[0] / 2
    hu = np.full(shape, -1000.0, np.float32)
    hu[(xx / 90) ** 2 + (yy / 70) ** 2 <= 1] = 40.0
    for cx in (-40.0, 40.0):
        hu[((xx - cx) / 30) ** 2 + (yy / 45) ** 2 <= 1] = -850.0
    lesion = ((xx + 40) ** 2 + yy**2 + ((zz - nz / 2) * spacing[2]) ** 2) <= 8.0**2
    hu[lesion] = 30.0
    hu += np.random.default_rng(seed).normal(0.0, noise, shape).astype(np.float32)
    return Scan("t", "real", "unknown", hu, lesion, spacing)


def test_regions_find_the_lungs_and_keep_the_lesion_margin_out() -> None:
    scan = _thorax()
    regions = find_regions(scan.hu, scan.lesions, scan.spacing)
    assert regions.lung.any() and (scan.hu[regions.lung] == -850.0).all()
    assert not (regions.lung & (scan.hu == -1000.0)).any()  # outside air is not lung
    nz, ny, nx = scan.hu.shape
    distance = np.hypot(
        (np.arange(nx) - nx / 2) * 1.0 + 40.0, (np.arange(ny)[:, None] - ny / 2) * 1.0
    )
    assert not regions.lung[nz // 2][distance < 8.0 + 10.0 - 1.0].any()  # lesion + 10 mm
    assert regions.soft_tissue.any() and (scan.hu[regions.soft_tissue] == 40.0).all()
    assert regions.body[nz // 2, ny // 2, nx // 2] and not regions.body[0, 0, 0]


def test_patches_lie_where_they_are_asked_for() -> None:
    scan = _thorax(spacing=COMMON_SPACING_MM, shape=(12, 100, 125))
    regions = find_regions(scan.hu, scan.lesions, scan.spacing)
    rng = np.random.default_rng(0)
    lung = parenchyma_patches(scan.hu, regions, 10, rng)
    assert lung.shape[1:] == PATCH and 0 < len(lung) <= 10
    assert (lung == -850.0).all()
    edge = lesion_patches(scan.hu, regions, scan.spacing, 10, rng)
    assert len(edge) > 0
    for patch in edge:  # each holds some lesion and some of what surrounds it
        assert (patch == 30.0).any() and (patch != 30.0).any()


def test_common_grid_keeps_hu_and_physical_size() -> None:
    scan = _thorax(spacing=(0.8, 0.8, 2.5), shape=(20, 150, 180))
    common = scan.on_common_grid()
    assert common.spacing == COMMON_SPACING_MM
    assert common.hu.shape == (10, 75, 90)
    assert np.allclose(common.hu[5, 37, 45], 40.0, atol=1.0)  # body centre stays soft tissue
    assert common.lesions.sum() * np.prod(COMMON_SPACING_MM) == pytest.approx(
        scan.lesions.sum() * np.prod(scan.spacing), rel=0.35
    )


def test_noise_spectrum_measures_noise_and_orders_kernels() -> None:
    sharp = _thorax(noise=20.0)
    spectrum = noise_spectrum(sharp.hu, np.ones(sharp.hu.shape, bool), sharp.spacing)
    assert spectrum is not None and spectrum.n_rois > 10
    assert spectrum.noise_sd_hu == pytest.approx(20.0, rel=0.1)
    df = spectrum.frequency[1] - spectrum.frequency[0]
    # Parseval: the NPS integrates to the noise variance (radially: 2 pi f df).
    assert np.sum(spectrum.power * 2 * np.pi * spectrum.frequency * df) == pytest.approx(
        400.0, rel=0.25
    )
    from scipy import ndimage

    soft_hu = sharp.hu.copy()
    soft_hu = ndimage.gaussian_filter(soft_hu, (0.0, 1.0, 1.0))
    soft = noise_spectrum(soft_hu, np.ones(soft_hu.shape, bool), sharp.spacing)
    assert soft is not None and soft.f_avg < 0.8 * spectrum.f_avg
    assert soft.noise_sd_hu < spectrum.noise_sd_hu


def _features(shift: float, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = rng.normal(0.0, 1.0, (60, 6))
    sim = rng.normal(0.0, 1.0, (80, 6))
    sim[:, 0] += shift
    x = pd.DataFrame(np.vstack([real, sim]), columns=[f"f{i}" for i in range(6)])
    is_real = np.r_[np.ones(60, bool), np.zeros(80, bool)]
    scan = np.r_[np.repeat(["r1", "r2", "r3"], 20), np.repeat([f"s{i}" for i in range(8)], 10)]
    return x, is_real, scan


def test_two_sample_auc_is_chance_for_alike_and_one_for_apart() -> None:
    alike = two_sample_auc(*_features(0.0, 0))
    assert 0.3 < alike.auc < 0.7
    assert alike.ci95 is not None and alike.ci95[0] < 0.5 < alike.ci95[1]
    apart = two_sample_auc(*_features(4.0, 0))
    assert apart.auc > 0.95 and apart.top_features[0] == "f0"
    assert (apart.n_real, apart.n_simulated, apart.n_real_scans) == (60, 80, 3)


@pytest.mark.slow
def test_the_command_on_tiny_data_against_the_real_scans(
    real_fixtures: Path, tmp_path: Path
) -> None:
    from benchmark.calibration.realism.__main__ import main

    code = main(
        [
            "--profile",
            "tiny",
            "--per-cohort",
            "2",
            "--real",
            str(real_fixtures / "pyradiomics"),
            "--out",
            str(tmp_path),
        ]
    )
    report = json.loads((tmp_path / "realism.json").read_text())
    assert code == (1 if any(not t["holds"] for t in report["targets"]) else 0)
    tests = {(t["patches"], t["simulated"]): t for t in report["two_sample"]}
    assert {("lung", "all"), ("lesion", "all")} <= set(tests)
    assert all(0.0 <= t["auc"] <= 1.0 and t["n_real_scans"] == 2 for t in tests.values())
    assert {row["source"] for row in report["nps"]} == {"real", "pembro_rt", "nivorad", "mdacc"}
    assert {t["name"] for t in report["targets"]} >= {
        f"two-sample AUC, {kind} patches, {cohort}"
        for kind in ("lung", "lesion")
        for cohort in ("pembro_rt", "nivorad", "mdacc")
    }
    assert (tmp_path / "slices.png").stat().st_size > 10_000
    assert (tmp_path / "measures.png").stat().st_size > 10_000
