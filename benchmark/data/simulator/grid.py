"""The voxel grid of a cohort's scans: shape and origin from the acquisition and field of view.

Shared by the tables (``SimulatedTables.acquisition`` records the shape) and the renderer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def grid_of(acquisition: Mapping[str, Any], fov_mm: Sequence[float]) -> dict[str, Any]:
    """Shape, origin and spacing as plain values: what the tables record of the grid."""
    spacing = [float(s) for s in acquisition["spacing_mm"]]
    shape = [int(math.ceil(f / s - 1e-9)) for f, s in zip(fov_mm, spacing, strict=True)]
    origin = [-(shape[0] - 1) * spacing[0] / 2.0, -(shape[1] - 1) * spacing[1] / 2.0, 0.0]
    return {"shape": shape, "origin": origin, "spacing_mm": spacing}


class Grid:
    """The grid as arrays (voxel centres, bounds, index lookups): what drawing works on."""

    def __init__(self, acquisition: Mapping[str, Any], fov_mm: Sequence[float]):
        g = grid_of(acquisition, fov_mm)
        self.nx, self.ny, self.nz = g["shape"]
        self.spacing = np.array(g["spacing_mm"])  # x, y, z
        self.origin = np.array(g["origin"])
        self.shape = (self.nz, self.ny, self.nx)
        self.xs = self.origin[0] + np.arange(self.nx) * self.spacing[0]
        self.ys = self.origin[1] + np.arange(self.ny) * self.spacing[1]
        self.zs = self.origin[2] + np.arange(self.nz) * self.spacing[2]
        self.lo = np.array([self.xs[0], self.ys[0], self.zs[0]])
        self.hi = np.array([self.xs[-1], self.ys[-1], self.zs[-1]])
        self._lo, self._hi = self.lo.tolist(), self.hi.tolist()  # for voxel_of
        self._origin, self._step = self.origin.tolist(), self.spacing.tolist()

    def index(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest voxel (k, j, i) of points (..., 3) in mm (x, y, z), clipped to the grid."""
        ijk = np.rint((points - self.origin) / self.spacing).astype(int)
        i = np.clip(ijk[..., 0], 0, self.nx - 1)
        j = np.clip(ijk[..., 1], 0, self.ny - 1)
        k = np.clip(ijk[..., 2], 0, self.nz - 1)
        return k, j, i

    def voxel_of(self, point: Sequence[float] | np.ndarray) -> tuple[int, int, int] | None:
        """Nearest voxel (k, j, i) of one point (x, y, z) mm, None outside the grid: what
        :meth:`index` gives for it, in plain floats (a vessel tree asks ten thousand times)."""
        coords = point.tolist() if isinstance(point, np.ndarray) else point
        if not all(lo <= v <= hi for v, lo, hi in zip(coords, self._lo, self._hi, strict=True)):
            return None
        i, j, k = (
            round((v - o) / s) for v, o, s in zip(coords, self._origin, self._step, strict=True)
        )
        return k, j, i

    def position(self, flat: np.ndarray) -> np.ndarray:
        k, j, i = np.unravel_index(flat, self.shape)
        return np.stack([self.xs[i], self.ys[j], self.zs[k]], axis=-1)
