"""The NIfTI header, from the bytes the scan inflates anyway: how long the file must be, and
where its voxels lie when they are floats (which can be NaN).
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np


def read_header(head: bytes) -> Any | None:
    """The nibabel header of a NIfTI-1 or -2 file's first bytes, or None if they are not one."""
    import nibabel as nib

    for cls, size in ((nib.Nifti1Header, 348), (nib.Nifti2Header, 540)):
        try:
            header = cls.from_fileobj(io.BytesIO(head[:size]), check=False)  # no extensions
        except Exception:  # noqa: BLE001 - nibabel raises several kinds on foreign bytes
            continue
        if int(header["sizeof_hdr"]) == size:
            return header
    return None


def expected_bytes(header: Any) -> int | None:
    """Bytes a single-file NIfTI needs (voxel offset + voxels), from its header; None if unknown."""
    dim = [int(d) for d in header["dim"]]
    bitpix = int(header["bitpix"])
    if not 1 <= dim[0] <= 7 or bitpix <= 0 or any(d < 0 for d in dim[1 : dim[0] + 1]):
        return None
    return int(header["vox_offset"]) + math.prod(dim[1 : dim[0] + 1]) * bitpix // 8


def float_voxels(header: Any) -> tuple[np.dtype, int, int] | None:
    """(dtype, offset, count) of the stored voxels when they are floats (maybe NaN), else None."""
    if int(header["datatype"]) not in (16, 64):  # float32, float64 (complex is refused)
        return None
    dim = [int(d) for d in header["dim"]]
    if not 1 <= dim[0] <= 7 or any(d < 0 for d in dim[1 : dim[0] + 1]):
        return None
    return header.get_data_dtype(), int(header["vox_offset"]), math.prod(dim[1 : dim[0] + 1])
