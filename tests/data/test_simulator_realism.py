"""The simulator's optional realism (conf/data/realistic.yaml): vessel trees, textured
parenchyma and kernel-shaped noise, and that a profile without them renders as before."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from benchmark.data.simulator import load_profile, simulate_tables
from benchmark.data.simulator.grid import Grid
from benchmark.data.simulator.lung import (
    _draw_segments,
    grow_tree,
    realistic_lung,
    voxel_average_sd,
)
from benchmark.data.simulator.phantom import HALO, LUNG, VESSEL
from benchmark.data.simulator.render import _acquire, render
from benchmark.data.simulator.scanner import ct_noise


def _radial_mean_frequency(noise: np.ndarray, spacing: float) -> float:
    power = np.abs(np.fft.fft2(noise, axes=(1, 2))) ** 2
    fy = np.fft.fftfreq(noise.shape[1], spacing)[:, None]
    fx = np.fft.fftfreq(noise.shape[2], spacing)[None, :]
    f = np.hypot(fy, fx)
    return float((f * power.mean(0)).sum() / power.mean(0).sum())


def test_ct_noise_has_no_power_at_zero_and_a_sharper_kernel_is_finer() -> None:
    grid = Grid({"spacing_mm": [0.8, 0.8, 2.0]}, [102.4, 102.4, 8.0])
    white = np.random.default_rng(0).standard_normal(grid.shape, dtype=np.float32)
    soft = ct_noise(white, grid, 0.25)
    sharp = ct_noise(white, grid, 0.9)
    assert soft.std() == pytest.approx(1.0, abs=1e-3)
    assert abs(float(soft.mean(axis=(1, 2)).max())) < 1e-3  # the ramp: nothing at DC
    assert _radial_mean_frequency(soft, 0.8) < 0.8 * _radial_mean_frequency(sharp, 0.8)


@pytest.mark.parametrize("width_mm", [0.5, 2.0, 5.0])
def test_a_thicker_voxel_averages_away_texture_as_a_block_mean_of_a_fine_field_does(
    width_mm: float,
) -> None:
    # A 1D field of grain 0.8 mm on a 0.05 mm grid, then voxels of width_mm as block means.
    fine, grain = 0.05, 0.8
    rng = np.random.default_rng(0)
    field = ndimage.gaussian_filter1d(rng.standard_normal(2_000_000), grain / fine)
    field /= field.std()
    block = int(round(width_mm / fine))
    means = field[: len(field) // block * block].reshape(-1, block).mean(1)
    predicted = voxel_average_sd(grain, (width_mm, 1e-6, 1e-6))
    assert means.std() == pytest.approx(predicted, rel=0.04)
    assert voxel_average_sd(grain, (1.0, 1.0, 5.0)) < voxel_average_sd(grain, (1.0, 1.0, 1.0))


def test_one_points_voxel_is_the_grids_index_inside_and_none_outside() -> None:
    grid = Grid({"spacing_mm": [1.3, 1.3, 5.0]}, [288.0, 208.0, 140.0])
    rng = np.random.default_rng(0)
    points = rng.uniform(grid.lo, grid.hi, size=(500, 3))
    for point, k, j, i in zip(points, *grid.index(points), strict=True):
        assert grid.voxel_of(point) == (k, j, i)
    assert grid.voxel_of(grid.hi + [0.0, 0.0, 0.1]) is None
    assert grid.voxel_of(grid.lo - [0.1, 0.0, 0.0]) is None


@pytest.mark.parametrize("radius_mm", [0.3, 0.8, 3.0])
@pytest.mark.parametrize("slice_mm", [1.0, 5.0])
def test_a_vessel_keeps_its_cross_section_whatever_its_calibre_slice_and_place(
    radius_mm: float, slice_mm: float
) -> None:
    # A vessel running in-plane, wherever it passes between pixel and slice centres: its drawn
    # volume per mm of length is its cross-section, pi r^2. Sampled at slice centres only, a
    # thin one in a 5 mm slice drew 6x that or nothing; sub-pixel ones drew 4/3 of it.
    grid = Grid({"spacing_mm": [1.0, 1.0, slice_mm]}, [40.0, 40.0, 25.0])
    for y in (0.0, 0.25, 0.5):
        for z in (10.0, 10.25, 11.5, 12.5):
            fraction = np.zeros(grid.shape, np.float32)
            _draw_segments(fraction, grid, [((-10.0, y, z), (10.0, y, z), radius_mm)])
            column = fraction[:, :, grid.nx // 2].sum() * slice_mm  # mm^2 in a 1 mm column
            assert column == pytest.approx(np.pi * radius_mm**2, rel=0.15), (y, z)


def test_a_vessel_tree_branches_by_murray_and_stays_in_the_lung() -> None:
    rng = np.random.default_rng(1)
    cfg = {"length_ratio": [4.0, 8.0], "asymmetry": [0.55, 0.95], "min_radius_mm": 0.5}

    def in_ball(p: np.ndarray) -> bool:  # a 150 mm ball of "lung" around the origin
        return float(np.linalg.norm(p)) < 150.0

    segments = grow_tree(rng, np.zeros(3), np.array([1.0, 0.0, 0.0]), 3.0, in_ball, cfg, 500)
    assert 20 < len(segments) <= 500
    assert all(in_ball(end) for _, end, _ in segments)
    radii = np.array([r for *_, r in segments])
    assert radii.max() == 3.0 and radii.min() >= 0.5
    # Each split keeps r^3: the two children that start where a segment ends.
    splits = 0
    for _, end, r in segments[:20]:
        children = [c for s, _, c in segments if np.allclose(s, end)]
        if len(children) == 2:
            splits += 1
            assert sum(c**3 for c in children) == pytest.approx(r**3, rel=1e-6)
    assert splits >= 5


def test_realistic_lungs_keep_the_patient_and_add_vessels_with_partial_volume() -> None:
    default = simulate_tables(load_profile("default"), 0)["pembro_rt"]
    realistic = simulate_tables(load_profile("realistic"), 0)["pembro_rt"]
    plain, real = render(default.render_spec(0)), render(realistic.render_spec(0))
    assert np.array_equal(plain.mask, real.mask)  # same lesions, same places
    lung = real.anatomy == LUNG
    assert (real.anatomy == VESSEL).sum() > 200
    spread = real.image[lung | (real.anatomy == VESSEL)]
    assert np.percentile(spread, 99) > -500  # vessels are drawn into the lung
    # partial volume: many lung voxels lie between parenchyma and blood
    assert ((spread > -700) & (spread < -100)).mean() > 0.01
    again = render(realistic.render_spec(0))
    assert np.array_equal(again.image, real.image)


def test_the_scanner_averages_the_sampled_phantom_over_the_slice_but_not_the_averaged_lungs() -> (
    None
):
    # One bright voxel in a 5 mm slice: sampled at the slice's centre, the slice profile spreads
    # it to its neighbours; already averaged over its voxel (the realistic lungs' texture and
    # vessels), only the PSF does, or the slice's averaging would count twice.
    grid = Grid({"spacing_mm": [1.0, 1.0, 5.0]}, [21.0, 21.0, 25.0])
    acq = {"blur_mm": 0.5, "noise_hu": 0.0, "hu_offset": 0.0}
    impulse = np.zeros(grid.shape, np.float32)
    impulse[2, 10, 10] = 1000.0
    flat = np.zeros(grid.shape, np.float32)
    rng = np.random.default_rng(0)
    sampled = _acquire(rng, impulse, grid, acq).astype(float)
    averaged = _acquire(rng, flat, grid, acq, averaged=impulse).astype(float)
    assert sampled[1].sum() > 0.05 * sampled.sum()  # the slice profile reaches the next slice
    assert averaged[1].sum() < 0.01 * averaged.sum()  # a 0.5 mm PSF does not, across 5 mm
    assert averaged.sum() == pytest.approx(1000.0, rel=0.02)


def test_ground_glass_in_the_lung_shows_its_texture_and_vessels_and_keeps_its_level() -> None:
    grid = Grid({"spacing_mm": [1.0, 1.0, 2.0]}, [80.0, 80.0, 40.0])
    cfg = load_profile("realistic")["defaults"]["anatomy"]["lung"]
    lab = np.full(grid.shape, LUNG, np.uint8)
    glass = np.zeros(grid.shape, bool)
    glass[:, 30:50, 5:25] = True  # a margin in the left lung
    lab[glass] = HALO
    aerated = np.ones(grid.shape, bool)  # lung before the lesion's margin was drawn
    even, patchy = [np.where(glass, -500.0, -850.0).astype(np.float32) for _ in range(2)]
    even += realistic_lung(np.random.default_rng(0), grid, lab.copy(), even, cfg)
    patchy += realistic_lung(np.random.default_rng(0), grid, lab.copy(), patchy, cfg, aerated)
    assert np.all(even[glass] == -500.0)  # without the lung before it: the margin as drawn
    assert patchy[glass].std() > 10.0  # texture and vessels show through
    assert abs(float(np.median(patchy[glass])) + 500.0) < 15.0  # its level stays


def test_the_clinical_profile_is_512_square_with_each_scanners_slices() -> None:
    tables = simulate_tables(load_profile("clinical"), 0)
    default = simulate_tables(load_profile("default"), 0)
    slices = {}
    for name, t in tables.items():
        nx, ny, nz = t.acquisition["shape"]
        assert (nx, ny) == (512, 512)
        assert 0.7 <= t.acquisition["spacing_mm"][0] <= 1.0
        slices[name] = t.acquisition["spacing_mm"][2]
        assert t.anatomy["lung"]["vessels"]["roots_per_lung"] > 0  # the realistic lungs
        assert t.patients.equals(default[name].patients)  # the same trial, finer images
    assert sorted(slices.values()) == [1.0, 3.0, 5.0]
