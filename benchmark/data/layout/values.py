"""Voxel values a CT cannot hold: NaN and infinities.

SimpleITK's NIfTI reader turns NaN and infinite voxels into 0 without a word (measured with
SimpleITK 2.5), while nibabel, which the deep models' crops read with, keeps them: a NaN would
reach pyradiomics as water and a network as NaN. So they are counted in the stored bytes, as the
scan inflates them to check the file's length (:class:`NonFinite`), not in the array SimpleITK
returns.
"""

from __future__ import annotations

import numpy as np


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
