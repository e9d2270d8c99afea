"""3D patches on the common grid: lung parenchyma, and lesion edges with their margin."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from benchmark.calibration.realism.regions import Regions

# (z, y, x) voxels on the common grid (1.6 x 1.6 x 5 mm): 3 slices, 33.6 mm in-plane. Odd, so a
# patch has a centre voxel.
PATCH = (3, 21, 21)
# Lesion-neighbourhood patches are centred within this band around the lesion surface (mm,
# negative inside): each holds the lesion edge, its margin and up to 10 mm of what lies beyond.
EDGE_BAND_MM = (-2.0, 6.0)


def _lattice(shape: tuple[int, ...], step: tuple[int, ...]) -> np.ndarray:
    grid = np.zeros(shape, bool)
    grid[tuple(slice(0, None, s) for s in step)] = True
    return grid


def _take(hu: np.ndarray, centres: np.ndarray) -> np.ndarray:
    half = np.array(PATCH) // 2
    return np.stack(
        [
            hu[tuple(slice(c - h, c + h + 1) for c, h in zip(centre, half, strict=True))]
            for centre in centres
        ]
    )


def _inside_volume(shape: tuple[int, ...]) -> np.ndarray:
    ok = np.zeros(shape, bool)
    half = np.array(PATCH) // 2
    ok[tuple(slice(h, n - h) for h, n in zip(half, shape, strict=True))] = True
    return ok


def _choose(candidates: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    where = np.argwhere(candidates)
    if len(where) > n:
        where = where[np.sort(rng.choice(len(where), n, replace=False))]
    return where


def parenchyma_patches(
    hu: np.ndarray, regions: Regions, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Up to ``n`` patches lying wholly in the parenchyma, centres on a half-overlap lattice."""
    whole = ndimage.minimum_filter(regions.lung.astype(np.uint8), size=PATCH, mode="constant")
    step = (max(1, PATCH[0] // 2), PATCH[1] // 2, PATCH[2] // 2)
    candidates = (whole > 0) & _inside_volume(hu.shape) & _lattice(hu.shape, step)
    centres = _choose(candidates, n, rng)
    return _take(hu, centres) if len(centres) else np.empty((0, *PATCH), np.float32)


def lesion_patches(
    hu: np.ndarray, regions: Regions, spacing_xyz: tuple, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Up to ``n`` patches centred near a lesion's surface (:data:`EDGE_BAND_MM`), each within
    the body."""
    if not regions.lesion.any():
        return np.empty((0, *PATCH), np.float32)
    spacing = np.array(spacing_xyz[::-1], dtype=float)
    outside = ndimage.distance_transform_edt(~regions.lesion, sampling=spacing)
    inside = ndimage.distance_transform_edt(regions.lesion, sampling=spacing)
    signed = np.where(regions.lesion, -inside, outside)
    band = (signed >= EDGE_BAND_MM[0]) & (signed <= EDGE_BAND_MM[1])
    step = (1, 3, 3)
    candidates = band & regions.body & _inside_volume(hu.shape) & _lattice(hu.shape, step)
    centres = _choose(candidates, n, rng)
    return _take(hu, centres) if len(centres) else np.empty((0, *PATCH), np.float32)
