"""A CT's voxel grid in DICOM patient coordinates (LPS, mm), as SimpleITK and NIfTI hold it.

Index order is SimpleITK's ``(x, y, z)`` = (column, row, slice); arrays are ``[z, y, x]``. The
slice axis points along the slices' normal (row direction x column direction) so that a DICOM
series lands on the grid a NIfTI writer and the simulator use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk


@dataclass(frozen=True)
class Grid:
    """Size, spacing, origin (centre of voxel 0) and direction (columns: the axes' unit vectors)."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]  # row-major 3x3, as SimpleITK's GetDirection

    @property
    def matrix(self) -> np.ndarray:
        """Index -> mm: ``mm = origin + matrix @ index``."""
        return np.asarray(self.direction, dtype=float).reshape(3, 3) * np.asarray(self.spacing)

    def to_mm(self, index: np.ndarray) -> np.ndarray:
        """``(n, 3)`` continuous indices to ``(n, 3)`` patient coordinates (mm)."""
        return np.asarray(index, dtype=float) @ self.matrix.T + np.asarray(self.origin)

    def to_index(self, mm: np.ndarray) -> np.ndarray:
        """``(n, 3)`` patient coordinates (mm) to continuous indices ``(x, y, z)``."""
        offset = np.asarray(mm, dtype=float) - np.asarray(self.origin)
        return np.linalg.solve(self.matrix, offset.T).T

    def image(self, array: np.ndarray) -> sitk.Image:
        """``array`` (``[z, y, x]``) as a SimpleITK image on this grid."""
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image

    @classmethod
    def of(cls, image: sitk.Image) -> Grid:
        """The grid of a SimpleITK image."""
        return cls(
            tuple(int(n) for n in image.GetSize()),  # type: ignore[arg-type]
            tuple(float(s) for s in image.GetSpacing()),  # type: ignore[arg-type]
            tuple(float(o) for o in image.GetOrigin()),  # type: ignore[arg-type]
            tuple(float(d) for d in image.GetDirection()),
        )


__all__ = ["Grid"]
