"""Lesions too small for radiomics: each label's voxels as seen on the radiomics grid.

pyradiomics (with the harness's settings, ``conf/radiomics/default.yaml``) resamples each lesion
to 1 mm isotropic voxels, nearest neighbour for the mask, on a grid aligned with the volume's
corner, and refuses a lesion that is then absent, or spans fewer than 2 axes (a dot or a line:
no shape or texture). Such a lesion fails a run at its radiomics step, long after validation; it
is almost always a contouring slip (a click, a stray voxel). The scan finds it from the mask's
voxels and spacing alone, so it is cached with the file.

The grid is pyradiomics' (``imageoperations.resampleImage``): along an axis of spacing ``s``,
grid voxel ``k`` samples the acquired voxel nearest to index ``(k + 0.5) * 1 mm / s - 0.5``, and
an axis along which the lesion is one voxel thick is not resampled. Where that index is a tie
(``s`` = 0.5, 0.7, 0.75, 1.5 mm, ...) floating point decides the rounding, so both neighbours count
as sampled: a lesion is refused only when it certainly fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# pyradiomics' resampledPixelSpacing and minimumROIDimensions in conf/radiomics/default.yaml
# (tests/data/test_site_data.py keeps them equal).
RADIOMICS_SPACING_MM = 1.0
RADIOMICS_MIN_DIMS = 2
_TIE = 1e-6


@dataclass(frozen=True)
class LesionSize:
    """One label's size: acquired voxels, and at most how much of it the radiomics grid keeps."""

    voxels: int
    grid_voxels: int  # acquired voxels some grid voxel may sample (0: the lesion vanishes)
    grid_dims: int  # axes along which it may span more than one grid voxel

    def issue(self, volume_mm3: float) -> str | None:
        """Why pyradiomics cannot measure this lesion, or None."""
        size = f"{self.voxels} voxel{'' if self.voxels == 1 else 's'}, {volume_mm3:.3g} mm³"
        grid = f"{RADIOMICS_SPACING_MM:g} mm grid radiomics resamples to"
        if self.grid_voxels == 0:
            return f"vanishes on the {grid} ({size}); expected a lesion that covers a grid voxel"
        if self.grid_dims < RADIOMICS_MIN_DIMS:
            return (
                f"spans fewer than {RADIOMICS_MIN_DIMS} axes on the {grid} ({size}: a dot or a "
                "line, with no shape or texture); expected an area or a volume"
            )
        return None


def _axis(n: int, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Along one resampled axis of ``n`` voxels: the acquired index each grid voxel may sample,
    rounded down and up at a tie (-1: outside the volume)."""
    ratio = RADIOMICS_SPACING_MM / spacing
    centre = (np.arange(math.ceil(n / ratio)) + 0.5) * ratio - 0.5
    low, high = np.floor(centre + 0.5 - _TIE), np.floor(centre + 0.5 + _TIE)
    inside = lambda v: np.where((v >= 0) & (v < n), v, -1).astype(np.int64)  # noqa: E731
    return inside(low), inside(high)


def lesion_sizes(labels: np.ndarray, spacing: tuple[float, ...]) -> dict[int, LesionSize]:
    """Each non-zero label's :class:`LesionSize`; ``labels`` is (z, y, x), ``spacing`` (x, y, z)."""
    flat = np.flatnonzero(labels)
    if flat.size == 0 or labels.ndim != 3:
        return {}
    values = labels.reshape(-1)[flat].astype(np.int64)
    coords = np.unravel_index(flat, labels.shape)[::-1]  # x, y, z
    shape = labels.shape[::-1]
    grids = [_axis(n, s) for n, s in zip(shape, spacing, strict=True)]
    sampled = []
    for n, (low, high) in zip(shape, grids, strict=True):
        hit = np.zeros(n + 1, bool)
        hit[low] = hit[high] = True  # index -1 lands on the spare last entry
        sampled.append(hit[:n])
    out = {}
    order = np.argsort(values, kind="stable")
    bounds = np.flatnonzero(np.diff(values[order])) + 1
    for group in np.split(order, bounds):
        points = [c[group] for c in coords]
        thick = [int(p.max() > p.min()) for p in points]  # a 1-voxel axis is not resampled
        keep = np.ones(group.size, bool)
        for axis, p in enumerate(points):
            if thick[axis]:
                keep &= sampled[axis][p]
        dims = 0
        if keep.any():
            for axis, p in enumerate(points):
                if thick[axis]:
                    lo, hi = p[keep].min(), p[keep].max()
                    low, high = grids[axis]
                    reach = ((low >= lo) & (low <= hi)) | ((high >= lo) & (high <= hi))
                    dims += int(np.count_nonzero(reach) > 1)
        out[int(values[group[0]])] = LesionSize(int(group.size), int(keep.sum()), dims)
    return out
