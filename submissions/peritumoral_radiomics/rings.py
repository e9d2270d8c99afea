"""Peritumoral rings: for every lesion, the tissue between ``inner`` and ``outer`` mm outside its
mask, as an instance mask with the lesion's own label, cached on disk by content.

Why rings in millimetres: the cohorts are acquired with different voxel sizes (1.3-1.6 mm
in-plane, 2-5 mm slices), so a ring of "2 voxels" would be a different tissue band per scanner.
Distances are Euclidean in physical space (``scipy.ndimage.distance_transform_edt`` with the
voxel spacing). A ring never holds voxels of any lesion (its own or a neighbour's).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from benchmark.api import Cohort

RING_VERSION = "1"  # bump when ring masks change for the same settings


def ring_mask(mask: np.ndarray, spacing_zyx: Sequence[float], inner: float, outer: float):
    """Instance ring mask (same labels) of an instance lesion mask ``mask`` (z, y, x)."""
    out = np.zeros_like(mask)
    spacing = np.asarray(spacing_zyx, float)
    reach = np.ceil(outer / spacing).astype(int) + 1
    for label in np.unique(mask[mask > 0]):
        where = np.argwhere(mask == label)
        lo = np.maximum(where.min(axis=0) - reach, 0)
        hi = np.minimum(where.max(axis=0) + reach + 1, mask.shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        lesion = mask[box] == label
        distance = ndimage.distance_transform_edt(~lesion, sampling=spacing)
        ring = (distance > inner) & (distance <= outer) & (mask[box] == 0)
        out[box][ring] = label
    return out


def _write_ring(source: Path, target: Path, inner: float, outer: float) -> None:
    """Write the ring mask of ``source`` to ``target`` atomically (temp file, then rename)."""
    image = sitk.ReadImage(str(source))
    mask = sitk.GetArrayFromImage(image)
    ring = sitk.GetImageFromArray(ring_mask(mask, image.GetSpacing()[::-1], inner, outer))
    ring.CopyInformation(image)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.{uuid.uuid4().hex}.tmp.nii.gz")
    try:
        sitk.WriteImage(ring, str(tmp), useCompression=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def ring_cohort(cohort: Cohort, inner: float, outer: float, cache_dir: str | Path) -> Cohort:
    """``cohort`` with each mask replaced by its ring mask (written once, keyed by content)."""
    tag = f"ring-v{RING_VERSION}-{inner:g}-{outer:g}mm"
    folder = Path(cache_dir) / tag
    masks, keys = {}, {}
    for pid in cohort.patient_ids:
        key = hashlib.sha256(f"{cohort.content_keys[pid]}|{tag}".encode()).hexdigest()
        path = folder / f"{key}.nii.gz"
        if not path.is_file():
            _write_ring(Path(cohort.masks[pid]), path, inner, outer)
        masks[pid], keys[pid] = path, key
    return replace(cohort, masks=masks, content_keys=keys)
