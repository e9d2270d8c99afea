"""NIfTI images and masks, each read fully once: content key, geometry, labels, own issues.

Every voxel is read (ITK would pass a truncated file as zeros), so the results are cached per
file, keyed by path, size and mtime. Image/mask geometry is compared here too
(:func:`geometry_mismatches`).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.data.layout.header import (
    datatype_issue,
    expected_bytes,
    float_voxels,
    header_issues,
    read_header,
)
from benchmark.data.layout.lesions import LesionSize, lesion_sizes
from benchmark.data.layout.values import NonFinite, hu_issues, spacing_issue
from benchmark.utils.atomic import write_atomic

# v2: entries carry the site-data checks (non-finite voxels, HU range, header, lesion sizes);
# a v1 entry, made without them, must not pass a file that fails them.
CACHE_VERSION = "layout-v2"
GEOMETRY_RTOL = 1e-4


class Unreadable(Exception):
    """A file that cannot be read as NIfTI; the message says why."""


@dataclass(frozen=True)
class FileInfo:
    """What one full read of a NIfTI file yields; the scan checks and fingerprints from it."""

    key: str  # sha256 of geometry + pixel type + voxel bytes
    geometry: dict[str, Any]  # dimension, size, spacing, origin, direction, pixel_type, components
    labels: tuple[int, ...] | None  # the mask's non-zero labels (None for an image)
    issues: tuple[str, ...]  # problems of the file on its own (not 3-D, non-integer mask, ...)
    sizes: dict[int, LesionSize] | None = None  # the mask's labels on the radiomics grid

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "geometry": self.geometry,
            "labels": None if self.labels is None else list(self.labels),
            "issues": list(self.issues),
            "sizes": None
            if self.sizes is None
            else {str(k): [v.voxels, v.grid_voxels, v.grid_dims] for k, v in self.sizes.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileInfo:
        labels, sizes = data["labels"], data["sizes"]
        return cls(
            data["key"],
            data["geometry"],
            None if labels is None else tuple(labels),
            tuple(data["issues"]),
            None if sizes is None else {int(k): LesionSize(*v) for k, v in sizes.items()},
        )


def _check_stream(path: Path) -> tuple[Any | None, NonFinite | None]:
    """Read the whole file: a corrupt or truncated gzip stream, or missing voxels, raise.

    ITK's NIfTI reader fills a truncated .nii.gz with zeros without a word, so this cannot be
    left to it. The same pass counts non-finite float voxels, which ITK turns into zeros. Returns
    the header (None if the bytes are not NIfTI: ITK then says why) and that count.
    """
    with path.open("rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
        handle.seek(0)
        try:
            with contextlib.ExitStack() as stack:
                stream: Any = handle
                if compressed:
                    stream = stack.enter_context(gzip.GzipFile(fileobj=handle, mode="rb"))
                head = stream.read(544)
                header = read_header(head)
                floats = None if header is None else float_voxels(header)
                counter = None if floats is None else NonFinite(*floats)
                if not compressed and counter is None:  # the header says how long it must be
                    total = os.fstat(handle.fileno()).st_size
                else:
                    total = len(head)
                    if counter is not None:
                        counter.feed(head, 0)
                    while chunk := stream.read(1 << 22):
                        if counter is not None:
                            counter.feed(chunk, total)
                        total += len(chunk)
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:
            raise Unreadable(f"corrupt or truncated gzip data ({err})") from err
    expected = None if header is None else expected_bytes(header)
    if expected is not None and total < expected:
        raise Unreadable(
            f"truncated: {total} bytes of NIfTI data where its header needs {expected}"
        )
    return header, counter


def _itk_message(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if "ERROR:" in line:
            return line.split("ERROR:", 1)[1].strip()
    return lines[-1] if lines else type(err).__name__


def _labels(array: np.ndarray, issues: list[str]) -> tuple[int, ...]:
    """The non-zero labels of a mask; non-integer or negative values go to ``issues``."""
    if array.dtype.kind == "f":
        whole = np.isfinite(array) & (array == np.round(array))
        if not whole.all():
            example = array[~whole].flat[0]
            issues.append(
                f"has non-integer values (e.g. {example:g}); expected an integer label map"
            )
            array = array[whole]
        array = array.astype(np.int64)
    elif array.dtype.kind not in "iub":
        issues.append(f"has voxel type {array.dtype}; expected an integer label map")
        return ()
    if array.size == 0:
        return ()
    low, high = int(array.min()), int(array.max())
    if low < 0:
        issues.append(f"has negative values (min {low}); expected labels >= 0 (0 = background)")
    if low >= 0 and high <= 1 << 16:
        counts = np.zeros(high + 1, np.int64)
        planes = array.reshape(array.shape[0], -1) if array.ndim > 1 else array[None]
        for plane in planes:  # one slice at a time, so as not to copy the volume as intp
            counts += np.bincount(plane.astype(np.intp, copy=False), minlength=high + 1)
        found = np.flatnonzero(counts)
    else:
        found = np.unique(array)
    return tuple(int(v) for v in found if v > 0)


def _read_nifti(path: Path, is_mask: bool) -> FileInfo:
    """Read one image or mask fully: its content key, geometry, labels and own issues."""
    import SimpleITK as sitk

    header, non_finite = _check_stream(path)
    reader = sitk.ImageFileReader()
    reader.SetImageIO("NiftiImageIO")
    reader.SetFileName(str(path))
    try:
        image = reader.Execute()
    except RuntimeError as err:
        raise Unreadable(f"cannot read as NIfTI ({_itk_message(err)})") from err
    geometry = {
        "dimension": image.GetDimension(),
        "size": list(image.GetSize()),
        "spacing": list(image.GetSpacing()),
        "origin": list(image.GetOrigin()),
        "direction": list(image.GetDirection()),
        "pixel_type": image.GetPixelIDTypeAsString(),
        "components": image.GetNumberOfComponentsPerPixel(),
    }
    array = sitk.GetArrayViewFromImage(image)
    digest = hashlib.sha256(json.dumps(geometry, sort_keys=True).encode())
    digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    issues: list[str] = []
    if geometry["dimension"] != 3:
        issues.append(f"is {geometry['dimension']}-D; expected a 3-D volume")
    if geometry["components"] != 1:
        issues.append(f"has {geometry['components']} components per voxel; expected a scalar image")
    placement = [] if header is None else header_issues(header, geometry)
    issues.extend(placement)
    if header is not None and non_finite is not None:  # ITK has made them zeros in ``array``
        issues.extend(filter(None, [non_finite.issue(_dims(header), _EXPECTED[is_mask])]))
    scalar_3d = geometry["components"] == 1 and geometry["dimension"] == 3
    labels, sizes = None, None
    if is_mask:
        own: list[str] = []
        labels = _labels(array, own) if geometry["components"] == 1 else ()
        issues.extend(own)
        if scalar_3d and not own:
            sizes = lesion_sizes(np.asarray(array), tuple(geometry["spacing"]))
    elif header is not None and (stored := datatype_issue(header)) is not None:
        issues.append(stored)  # its values say nothing more
    elif scalar_3d and not placement:  # else values and spacing follow from the header's fault
        issues.extend(hu_issues(np.asarray(array)))
        issues.extend(filter(None, [spacing_issue(geometry["spacing"])]))
    return FileInfo("sha256:" + digest.hexdigest(), geometry, labels, tuple(issues), sizes)


_EXPECTED = {True: "labels", False: "HU values"}


def _dims(header: Any) -> tuple[int, ...]:
    dim = [int(d) for d in header["dim"]]
    return tuple(dim[1 : dim[0] + 1])


class FileCache:
    """Per-file results in ``<cache_dir>/layout-v2/``, keyed by (absolute path, size, mtime_ns).

    The scan reads every file through it (``read``), so an unchanged file is not read again.
    """

    def __init__(self, cache_dir: Path | None) -> None:
        self.folder = None if cache_dir is None else Path(cache_dir) / CACHE_VERSION

    def _entry(self, path: Path, is_mask: bool) -> tuple[Path, dict[str, Any]] | None:
        if self.folder is None:
            return None
        stat = path.stat()
        ident = {
            "path": str(path.resolve()),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "mask": is_mask,
        }
        name = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()
        return self.folder / f"{name}.json", ident

    def read(self, path: Path, is_mask: bool) -> FileInfo:
        entry = self._entry(path, is_mask)
        if entry is not None:
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                data = json.loads(entry[0].read_text())
                if data["ident"] == entry[1]:
                    return FileInfo.from_json(data["info"])
        info = _read_nifti(path, is_mask)
        if entry is not None:
            self._write(entry[0], {"ident": entry[1], "info": info.to_json()})
        return info

    def _write(self, target: Path, data: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # a read-only cache only costs speed
            write_atomic(target, json.dumps(data))


def geometry_mismatches(image: FileInfo, mask: FileInfo, image_rel: str) -> list[str]:
    """How a mask's grid differs from its image's (``image_rel`` names the image); [] if alike."""
    a, b = image.geometry, mask.geometry
    messages = []
    if a["size"] != b["size"]:
        messages.append(
            f"size {tuple(b['size'])} differs from the image's "
            f"{tuple(a['size'])} ({image_rel}); expected mask and image on the "
            "same grid"
        )
    for attr in ("spacing", "origin", "direction"):
        if _differs(a[attr], b[attr]):
            messages.append(
                f"{attr} {_fmt(b[attr])} differs from the image's "
                f"{_fmt(a[attr])} ({image_rel}); expected mask and image to "
                "share size, spacing, origin and direction"
            )
    return messages


def _differs(a: Sequence[float], b: Sequence[float]) -> bool:
    if len(a) != len(b):
        return True
    return any(
        abs(x - y) > GEOMETRY_RTOL * max(1.0, abs(x), abs(y)) for x, y in zip(a, b, strict=True)
    )


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in values) + ")"
