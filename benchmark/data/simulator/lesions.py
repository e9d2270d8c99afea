"""What a lesion looks like: its lobulated, spiculated surface and how it is drawn into a scan.

Shape, texture, necrosis and halo are the visible readouts of the lesion's latent aggressiveness.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import ndimage

from benchmark.data.simulator.grid import _Grid
from benchmark.data.simulator.phantom import (
    ADRENAL,
    FAT,
    HALO,
    HEART,
    LESION,
    LIVER,
    LUNG,
    SOFT,
    VESSEL,
)

_PLEURA_FLATTEN = 0.7  # a pleural lesion is a lens, this flat along the wall normal


def _fibonacci_sphere(n: int) -> np.ndarray:
    k = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * k / n)
    theta = np.pi * (1 + 5**0.5) * k
    return np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], 1)


_SPHERE = _fibonacci_sphere(1500)


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class _Shape:
    """The surface of one lesion: radius as a function of direction (lobulated, spiculated)."""

    def __init__(self, rng: np.random.Generator, lesion: Mapping[str, Any]):
        self.r0 = float(lesion["diameter_mm"]) / 2.0
        self.lobulation = float(lesion["lobulation"])
        self.lob_dirs = _unit(rng, 4)
        self.lob_freq = rng.integers(2, 6, 4).astype(float)
        self.lob_phase = rng.uniform(0, 2 * np.pi, 4)
        n = int(lesion["n_spicules"])
        self.spike_dirs = _unit(rng, n)
        self.spike_power = rng.uniform(15.0, 45.0, n)
        self.spike_rel = float(lesion["spicule_mm"]) * rng.uniform(0.6, 1.2, n) / self.r0
        self.clip = min(1.45 * self.r0, self.r0 + 10.0, 34.0)
        self.rmax = float(self.radius(np.vstack([_SPHERE, self.spike_dirs])).max())

    def radius(self, u: np.ndarray) -> np.ndarray:
        """Radius (mm) along unit directions u (..., 3)."""
        lob = np.zeros(u.shape[:-1])
        for w, f, p in zip(self.lob_dirs, self.lob_freq, self.lob_phase, strict=True):
            lob += np.cos(f * np.arccos(np.clip(u @ w, -1.0, 1.0)) + p)
        r = np.maximum(1.0 + self.lobulation * lob / math.sqrt(len(self.lob_freq)), 0.7)
        for v, power, rel in zip(self.spike_dirs, self.spike_power, self.spike_rel, strict=True):
            r += rel * np.maximum(u @ v, 0.0) ** power
        return np.minimum(self.r0 * r, self.clip)


def _smooth_field(rng: np.random.Generator, shape, sigma_vox) -> np.ndarray:
    field = ndimage.gaussian_filter(
        rng.standard_normal(shape, dtype=np.float32), sigma_vox, mode="nearest", truncate=3.0
    )
    return field / max(float(field.std()), 1e-6)


def _draw_lesion(
    rng: np.random.Generator,
    grid: _Grid,
    hu: np.ndarray,
    lab: np.ndarray,
    mask: np.ndarray,
    lesion: Mapping[str, Any],
    shape: _Shape,
    centre: np.ndarray,
    normal: np.ndarray | None,
) -> None:
    halo = float(lesion["halo_mm"])
    ext = shape.rmax + halo + grid.spacing
    lo = np.maximum(np.floor((centre - ext - grid.origin) / grid.spacing).astype(int), 0)
    hi = np.minimum(
        np.ceil((centre + ext - grid.origin) / grid.spacing).astype(int) + 1,
        [grid.nx, grid.ny, grid.nz],
    )
    box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    dx = (grid.xs[lo[0] : hi[0]] - centre[0])[None, None, :]
    dy = (grid.ys[lo[1] : hi[1]] - centre[1])[None, :, None]
    dz = (grid.zs[lo[2] : hi[2]] - centre[2])[:, None, None]
    d = np.stack(np.broadcast_arrays(dx, dy, dz), axis=-1)
    if normal is not None:  # lens: distances along the normal count 1/f times
        along = d @ normal
        d = d + (1.0 / _PLEURA_FLATTEN - 1.0) * along[..., None] * normal
    r = np.linalg.norm(d, axis=-1)
    u = d / np.maximum(r, 1e-6)[..., None]
    radius = shape.radius(u)
    inside = r <= radius
    if not inside.any():  # never for measurable lesions; keep the centre voxel at least
        inside[tuple(np.array(inside.shape) // 2)] = True

    sub_hu, sub_lab, sub_mask = hu[box], lab[box], mask[box]
    field = _smooth_field(rng, inside.shape, 1.5 / grid.spacing[::-1])
    if halo > 0:
        shell = (r > radius) & (r <= radius + halo) & (sub_lab != LESION) & (sub_lab != HALO)
        w = np.clip(1.0 - (r - radius) / halo, 0.0, 1.0) ** 0.8
        lungish = shell & np.isin(sub_lab, [LUNG, VESSEL])
        ggo = rng.uniform(-560.0, -380.0) + 40.0 * field
        sub_hu[lungish] += (w * (ggo - sub_hu))[lungish]
        softish = shell & np.isin(sub_lab, [FAT, SOFT, LIVER, ADRENAL, HEART])
        sub_hu[softish] += (0.45 * w * (float(lesion["tumour_hu"]) - sub_hu))[softish]
        sub_lab[lungish | softish] = HALO
    values = float(lesion["tumour_hu"]) + float(lesion["texture_hu"]) * field
    necrotic = r < float(lesion["necrosis"]) * radius * (1.0 + 0.15 * field)
    values = np.where(necrotic, rng.uniform(5.0, 18.0) + 3.0 * field, values)
    sub_hu[inside] = values[inside]
    sub_lab[inside] = LESION
    sub_mask[inside] = int(lesion["mask_label"])
