"""Voxel values a CT in Hounsfield units cannot hold: NaN and infinities, and ranges of other units.

SimpleITK's NIfTI reader turns NaN and infinite voxels into 0 without a word (measured with
SimpleITK 2.5), while nibabel, which the deep models' crops read with, keeps them: a NaN would
reach pyradiomics as water and a network as NaN. So they are counted in the stored bytes, as the
scan inflates them to check the file's length (:class:`NonFinite`), not in the array SimpleITK
returns.

The HU thresholds (:func:`hu_issues`) are a radiologist's, not a fit to the data: every chest CT
holds air outside the body and aerated lung (-1000 to -700 HU) and soft tissue and bone (20 to
over 1000 HU); a scanner stores -1024 to 3071 HU (about 30,000 on an extended scale for metal),
and pads outside its field of view with a value down to -32768. An image with no voxel below
-500 HU is not in HU (stored values 0 to 4095 written without their rescale intercept, an
attenuation map, a normalised image); one with no voxel above 0 HU holds no patient; values
beyond the 16-bit range come from a wrong rescale slope.
"""

from __future__ import annotations

import numpy as np

AIR_BELOW_HU = -500.0  # some voxel must be darker: air and lung
TISSUE_ABOVE_HU = 0.0  # some voxel must be brighter: soft tissue and bone
HU_RANGE = (-32768.0, 32767.0)  # what a scanner's 16-bit values span, padding and metal included
SPACING_RANGE_MM = (0.1, 20.0)  # clinical CT: 0.3-1 mm in-plane, 0.5-10 mm between slices


class NonFinite:
    """Counts NaN and infinite values among a file's stored float voxels as its bytes stream past.

    ``feed`` takes consecutive pieces of the (decompressed) file with their offset in it; a voxel
    split across two pieces is kept until the rest arrives.
    """

    def __init__(self, dtype: np.dtype, offset: int, count: int) -> None:
        self.dtype = np.dtype(dtype)
        self.start, self.stop = offset, offset + count * self.dtype.itemsize
        self.pending = b""
        self.count = 0
        self.first: int | None = None  # flat index (NIfTI order: x fastest) of the first one

    def feed(self, data: bytes, at: int) -> None:
        """Look at ``data``, the file's bytes from offset ``at``."""
        lo, hi = max(at, self.start), min(at + len(data), self.stop)
        if hi <= lo:
            return
        piece = memoryview(data)[lo - at : hi - at]
        if self.pending:
            piece = memoryview(self.pending + bytes(piece))
        base = (lo - len(self.pending) - self.start) // self.dtype.itemsize
        whole = len(piece) - len(piece) % self.dtype.itemsize
        values = np.frombuffer(piece[:whole], dtype=self.dtype)
        bad = ~np.isfinite(values)
        found = int(np.count_nonzero(bad))
        if found and self.first is None:
            self.first = base + int(np.argmax(bad))
        self.count += found
        self.pending = bytes(piece[whole:])

    def issue(self, shape: tuple[int, ...], what: str) -> str | None:
        """The problem to report (``shape``: the header's dims, x first), or None."""
        if not self.count:
            return None
        assert self.first is not None
        index = np.unravel_index(self.first, tuple(reversed(shape)))[::-1]
        where = ", ".join(str(int(i)) for i in index)
        return (
            f"has {self.count} non-finite voxel{'' if self.count == 1 else 's'} (NaN or "
            f"infinite), the first at voxel ({where}); expected finite {what}"
        )


def hu_issues(array: np.ndarray) -> list[str]:
    """Why an image's values are not a chest CT in HU; [] when they can be."""
    if array.size == 0 or array.dtype.kind not in "iuf":
        return []
    low, high = float(array.min()), float(array.max())
    span = f"(min {low:g}, max {high:g})"
    if low < HU_RANGE[0] or high > HU_RANGE[1]:
        return [
            f"has values outside [{HU_RANGE[0]:g}, {HU_RANGE[1]:g}] HU {span}; expected HU, which "
            "scanners store as 16-bit values: a wrong rescale slope?"
        ]
    if low > AIR_BELOW_HU:
        return [
            f"has no voxel below {AIR_BELOW_HU:g} HU {span}; expected CT in HU, where air and lung "
            "lie at -1000 to -700: stored values without their rescale intercept, or other units?"
        ]
    if high < TISSUE_ABOVE_HU:
        return [
            f"has no voxel above {TISSUE_ABOVE_HU:g} HU {span}; expected CT in HU, where soft "
            "tissue and bone lie above 0: a blank or wrongly scaled image?"
        ]
    return []


def spacing_issue(spacing: list[float]) -> str | None:
    """Why a voxel spacing (mm) is not a CT's, or None."""
    low, high = SPACING_RANGE_MM
    if all(low <= s <= high for s in spacing):
        return None
    shown = ", ".join(f"{s:.6g}" for s in spacing)
    return (
        f"has voxel spacing ({shown}) mm; expected {low:g} to {high:g} mm (clinical CT: about "
        "0.3-1 mm in-plane, 0.5-10 mm between slices): a header in other units?"
    )
