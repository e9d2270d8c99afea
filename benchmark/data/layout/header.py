"""NIfTI header fields that the harness's two readers interpret differently, checked from the bytes.

The scan and pyradiomics read a file with SimpleITK; the deep models' crops read it with nibabel
(MONAI's loader). On a clean header they agree. On a broken one each repairs it its own way
(measured with SimpleITK 2.5 and nibabel 5.4): SimpleITK scales the spacing by the header's length
unit and nibabel ignores it; a zero, negative or NaN voxel size becomes 1 or flips an axis in one
of them only; with an sform code other than 1 SimpleITK takes the qform and nibabel the sform;
with neither code set they place the volume differently; SimpleITK adds the intercept of a
slope of 0 or NaN and nibabel does not. A model would then see an image and mask placed or scaled
unlike what was validated, so such a header is refused with the field to fix.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

# A tenth of the smallest voxel: two placements closer than this are the same grid for any
# resampling, and float32 header fields (quaternions) round to far less.
PLACEMENT_TOLERANCE = 0.1

# NIfTI datatype codes that cannot hold CT in HU (8 bits: 256 levels for a 4000 HU range).
_EIGHT_BIT = {1: "1-bit", 2: "8-bit unsigned", 256: "8-bit signed"}
_COMPLEX = {32, 1792, 2048}
_UNITS = {1: "metres", 3: "micrometres"}  # the spatial units other than mm (2) and unknown (0)


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


def datatype_issue(header: Any) -> str | None:
    """Why an image's stored voxel type cannot be CT in HU, or None (masks: the label checks)."""
    code = int(header["datatype"])
    if code in _COMPLEX:
        return "stores complex voxels; expected real HU values"
    if code in _EIGHT_BIT:
        return (
            f"stores {_EIGHT_BIT[code]} voxels (at most 256 levels); expected CT in HU as 16-bit "
            "or wider integers or floats: an 8-bit image is a windowed or quantised export"
        )
    return None


def header_issues(header: Any, geometry: dict[str, Any]) -> list[str]:
    """How the header is broken, or places the voxels differently for SimpleITK (``geometry``,
    as read) and nibabel; [] when both readers see the same volume."""
    if bytes(header["magic"])[:2] not in (b"n+", b"ni"):
        return [
            "has no NIfTI magic (an ANALYZE 7.5 header?): SimpleITK reads it without its "
            "orientation, nibabel refuses it; expected a NIfTI-1 file"
        ]
    issues = _field_issues(header)
    if issues or int(geometry["dimension"]) < 3:  # a file that is not 3-D is refused as such
        return issues
    placement = _placement_issue(header, geometry)
    return [] if placement is None else [placement]


def _field_issues(header: Any) -> list[str]:
    """Fields each reader repairs its own way: voxel size, length unit, scaling, no placement."""
    issues = []
    pixdim = [float(v) for v in header["pixdim"][1:4]]
    if not all(math.isfinite(v) and v > 0 for v in pixdim):
        issues.append(
            f"has voxel size (pixdim) {_fmt(pixdim)}; expected positive finite sizes (readers "
            "replace a zero, negative or NaN size differently)"
        )
    unit = int(header["xyzt_units"]) & 0x07
    if unit in _UNITS:
        issues.append(
            f"gives lengths in {_UNITS[unit]} (xyzt_units {int(header['xyzt_units'])}); expected "
            "mm or unset: SimpleITK converts to mm, nibabel does not"
        )
    scaling = _scaling_issue(float(header["scl_slope"]), float(header["scl_inter"]))
    if scaling is not None:
        issues.append(scaling)
    if int(header["qform_code"]) <= 0 and int(header["sform_code"]) <= 0:
        issues.append(
            "has neither a qform nor an sform (both codes 0): its orientation in the patient is "
            "unknown; expected the scanner's placement of the voxels"
        )
    return issues


def _placement_issue(header: Any, geometry: dict[str, Any]) -> str | None:
    """A qform and sform that disagree, or SimpleITK and nibabel placing the voxels apart."""
    if float(header["pixdim"][0]) not in (-1.0, 1.0):  # nib.load takes any other qfac as 1
        header = header.copy()
        pixdim = header["pixdim"]
        pixdim[0] = 1.0
        header["pixdim"] = pixdim
    forms = []
    for name, get in (("qform", header.get_qform), ("sform", header.get_sform)):
        if int(header[f"{name}_code"]) > 0:
            try:
                affine = np.asarray(get(), dtype=float)
            except Exception as err:  # noqa: BLE001 - nibabel rejects a broken quaternion
                return f"has an unusable {name} ({err}); expected a valid placement"
            if not np.isfinite(affine).all():
                return f"has non-finite values in its {name}; expected a valid placement"
            forms.append(affine)
    size = [int(d) for d in header["dim"][1:4]]
    tolerance = PLACEMENT_TOLERANCE * min(float(v) for v in header["pixdim"][1:4])
    if len(forms) == 2:
        gap, corner = _largest_gap(forms[0], forms[1], size)
        if gap > tolerance:
            return (
                f"has a qform and an sform that place voxel {corner} {gap:.3g} mm apart; expected "
                "one placement (readers differ in which of the two they use)"
            )
    itk = _itk_affine(geometry)
    if itk is None:
        return "has a non-finite spacing, origin or direction; expected a valid placement"
    gap, corner = _largest_gap(itk, np.asarray(header.get_best_affine(), dtype=float), size)
    if gap > tolerance:
        return (
            f"is placed differently by SimpleITK and nibabel (voxel {corner} {gap:.3g} mm apart); "
            "expected a header both read alike (not an sform with shear or with voxel sizes "
            "other than pixdim, nor a qfac other than 1 or -1)"
        )
    return None


def _scaling_issue(slope: float, inter: float) -> str | None:
    """Why readers would scale the stored values differently, or None.

    A slope of 0 or NaN means no scaling (nibabel writes NaN and NaN); then both readers ignore
    an intercept of 0 or NaN, but SimpleITK adds any other, and nibabel refuses a NaN intercept
    beside a real slope.
    """
    unset = lambda v: v == 0 or math.isnan(v)  # noqa: E731
    if (unset(slope) and unset(inter)) or (math.isfinite(slope) and slope and math.isfinite(inter)):
        return None
    return (
        f"has scl_slope {slope:g} and scl_inter {inter:g}; expected a finite slope and intercept, "
        "or neither (readers apply this one differently)"
    )


def _itk_affine(geometry: dict[str, Any]) -> np.ndarray | None:
    """SimpleITK's voxel -> RAS mm matrix (it reports LPS), or None if not finite."""
    spacing = np.asarray(geometry["spacing"][:3], dtype=float)
    origin = np.asarray(geometry["origin"][:3], dtype=float)
    dim = int(geometry["dimension"])
    direction = np.asarray(geometry["direction"], dtype=float).reshape(dim, dim)[:3, :3]
    affine = np.eye(4)
    flip = np.diag([-1.0, -1.0, 1.0])
    affine[:3, :3] = flip @ direction @ np.diag(spacing)
    affine[:3, 3] = flip @ origin
    return affine if np.isfinite(affine).all() else None


def _largest_gap(a: np.ndarray, b: np.ndarray, size: list[int]) -> tuple[float, tuple[int, ...]]:
    """The largest distance (mm) at which ``a`` and ``b`` place a corner voxel, and that corner."""
    corners = [
        (i, j, k)
        for i in (0, max(size[0] - 1, 0))
        for j in (0, max(size[1] - 1, 0))
        for k in (0, max(size[2] - 1, 0))
    ]
    gaps = [float(np.linalg.norm((a - b) @ np.array([*c, 1.0]))) for c in corners]
    worst = int(np.argmax(gaps))
    return gaps[worst], corners[worst]


def _fmt(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in values) + ")"
