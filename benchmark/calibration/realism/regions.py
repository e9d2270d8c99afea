"""Where to look in a CT: the lungs, the body, soft tissue and fat, found from HU alone so that
real and simulated scans are segmented by the same rule."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

AIR_HU = -400.0  # lung and outside air below, everything else above (after smoothing)
LUNG_ERODE_MM = 3.0  # away from the chest wall, the mediastinum and the partial-volume rim
LESION_MARGIN_MM = 10.0  # parenchyma starts this far from a lesion
SOFT_TISSUE_HU = (0.0, 100.0)  # muscle, organs, blood (smoothed HU)
FAT_HU = (-150.0, -50.0)
MIN_LUNG_ML = 50.0  # smaller air pockets inside the body (bowel gas) are not lung


@dataclass(frozen=True)
class Regions:
    """Boolean masks (z, y, x) of one scan."""

    body: np.ndarray
    lung: np.ndarray  # parenchyma: the eroded lungs, lesions and their margin excluded
    soft_tissue: np.ndarray
    fat: np.ndarray
    lesion: np.ndarray


def _ball(radius_mm: float, spacing_zyx: np.ndarray) -> np.ndarray:
    r = np.maximum(np.round(radius_mm / spacing_zyx).astype(int), 0)
    grid = np.ogrid[tuple(slice(-k, k + 1) for k in r)]
    return sum((g * s / radius_mm) ** 2 for g, s in zip(grid, spacing_zyx, strict=True)) <= 1.0


def outside_air(air: np.ndarray) -> np.ndarray:
    """Air connected to the in-plane border of the field of view: outside the body."""
    labels, _ = ndimage.label(air)
    edge = np.concatenate(
        [
            labels[:, 0, :].ravel(),
            labels[:, -1, :].ravel(),
            labels[:, :, 0].ravel(),
            labels[:, :, -1].ravel(),
        ]
    )
    touching = np.unique(edge[edge > 0])
    return np.isin(labels, touching)


def _air(hu: np.ndarray, spacing: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(air, outside air, body)."""
    smooth = ndimage.gaussian_filter(hu, (0.0, *(1.5 / spacing[1:])))
    air = smooth < AIR_HU
    outside = outside_air(air)
    body = np.stack([ndimage.binary_fill_holes(s) for s in ~outside])
    return air, outside, body


def find_regions(hu: np.ndarray, lesion: np.ndarray, spacing_xyz: tuple) -> Regions:
    """The regions of a scan on any grid (``spacing_xyz`` in mm)."""
    spacing = np.array(spacing_xyz[::-1], dtype=float)
    air, outside, body = _air(hu, spacing)
    inner_air = air & ~outside
    labels, n = ndimage.label(inner_air)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    sizes = ndimage.sum(inner_air, labels, index=np.arange(1, n + 1)) * voxel_ml
    lungs = np.isin(labels, 1 + np.flatnonzero(sizes >= MIN_LUNG_ML))
    lungs = np.stack([ndimage.binary_fill_holes(s) for s in lungs])  # vessels, small nodules
    lungs = ndimage.binary_erosion(lungs, _ball(LUNG_ERODE_MM, spacing))
    near_lesion = ndimage.binary_dilation(lesion, _ball(LESION_MARGIN_MM, spacing))
    parenchyma = lungs & ~near_lesion
    wide = ndimage.gaussian_filter(hu, (0.0, *(3.0 / spacing[1:])))
    not_lung = body & ~lungs & ~near_lesion
    soft = not_lung & (wide >= SOFT_TISSUE_HU[0]) & (wide <= SOFT_TISSUE_HU[1])
    fat = not_lung & (wide >= FAT_HU[0]) & (wide <= FAT_HU[1])
    return Regions(body, parenchyma, soft, fat, lesion)
