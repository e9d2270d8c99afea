"""Lesion-centred CT crops for the deep baselines, cached on disk by content key, and 2.5D views.

Both deep families (``cnn3d``, ``timm25d``) see a lesion through the same crop, built from MONAI
transforms: in the RAS orientation of the patient's CT and mask, a box around the centroid of
each lesion's mask voxels is resampled to an isotropic grid (bilinear CT, nearest mask), the HU
window is mapped to ``[0, 1]``, and a cube of fixed *physical* size is cut centred on the lesion
(padded with 0 = air beyond the scan). Only the mask is read whole; the CT is read and oriented
box by box (:class:`_Volume`), with the affines MONAI's loader and ``Orientation`` give, so the
crops are those of loading and reorienting both volumes whole, at a fraction of the cost on a
512² CT. Channels are ``[ct, label]``, the label channel being that lesion's signed distance map
(default), its binary mask, or absent (see :data:`LABEL_CHANNELS`); it describes that lesion
only, so neighbouring lesions do not leak into it.

Array axes follow MONAI after ``Orientationd("RAS")``: ``[lesion, channel, x (R), y (A), z (S)]``,
so the axial plane is ``[..., :, :, z]``.

One patient's crops are cached as ``<cache_dir>/<key>/<content key>.npz`` holding every label of
its mask (CT, mask and the distance channel); ``key`` hashes the settings that change the voxels
(spacing, size, window, :data:`CROP_VERSION`, MONAI version) and the content key (from the
cohort) hashes the patient's image and mask, so a cache hit never reads NIfTI and any change to
data or settings recomputes. Files are written atomically (temp file + ``os.replace``):
concurrent runs never see half a file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmark.api.cohort import Cohort
from benchmark.utils.atomic import unless_read_only, write_atomic
from benchmark.utils.pool import run_jobs
from benchmark.utils.threads import torch_threads

# Bump when this module changes how crops are computed or stored: it invalidates every cache.
# 2: the distance channel is stored (CT and mask as in 1).
CROP_VERSION = "2"

# What the second channel tells a network about the lesion. "distance": the signed distance to
# its surface (mm, negative inside), divided by DISTANCE_SCALE_MM and clipped to [-1, 1], so a
# network sees where every voxel lies relative to the lesion (peritumoral tissue is a band of
# distances, which a binary mask only implies); "mask": the binary mask; None: CT only.
LABEL_CHANNELS = ("distance", "mask", None)
DISTANCE_SCALE_MM = 20.0

# Starting a process pool costs seconds (spawn, then each worker imports torch and MONAI: ~8 s on
# the 2-core reference box), while a simulated patient crops in ~0.2 s: the pool is used only when
# the work left, timed on the first patient, would save more than that.
POOL_STARTUP_S = 10.0

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

log = logging.getLogger(__name__)


class CropError(RuntimeError):
    """Cropping failed for one patient or lesion; the message names them and their files."""


# ---- the per-patient work unit (top level, so that a process pool can pickle it) ----------------


class _Volume:
    """One NIfTI file as MONAI's loader and ``Orientation("RAS")`` would give it, without reading
    or reorienting the whole volume.

    The header gives the affine and shape; MONAI computes the oriented ones on a stand-in that
    holds no voxels (``Orientation(lazy=True)``, then ``SpatialCrop`` on a zero-stride tensor),
    so every affine below is the one the eager transforms produce, bit for bit. Voxels are read
    only where asked (:meth:`read`, through nibabel's array proxy, which decompresses a ``.gz``
    only up to the last byte it needs) and put into RAS order with the same flips and transposes
    ``Orientation`` applies. At 512² this is what makes a crop cheap: the old path read, converted
    to float32 and flipped two whole volumes per patient.
    """

    def __init__(self, path: str) -> None:
        import nibabel as nib
        from monai.transforms import Orientation

        self.path = path
        self.nifti = nib.load(path)
        shape = tuple(int(n) for n in self.nifti.shape)
        if len(shape) != 3:
            raise ValueError(f"{path}: expected a 3D volume, got shape {shape}")
        self.file_shape = shape
        # As MONAI's NibabelReader: the affine copied from nibabel, the space RAS.
        affine = np.array(self.nifti.affine, copy=True)
        source = self._standin(shape, torch.as_tensor(affine, dtype=torch.float64))
        lazy = Orientation(axcodes="RAS", labels=None, lazy=True)(source)
        self.oriented = self._standin(
            tuple(int(n) for n in lazy.peek_pending_shape()),
            torch.as_tensor(lazy.peek_pending_affine(), dtype=torch.float64),
        )
        # What Orientation does to the voxels: file axis i becomes axis ornt[i, 0], flipped
        # when ornt[i, 1] == -1 (the transform MONAI derives, from the same affine).
        self.ornt = nib.orientations.ornt_transform(
            nib.io_orientation(affine), nib.orientations.axcodes2ornt("RAS")
        )

    @staticmethod
    def _standin(shape: tuple[int, ...], affine: torch.Tensor):
        from monai.data import MetaTensor

        empty = torch.zeros((), dtype=torch.uint8).expand(1, *shape)
        return MetaTensor(empty, affine=affine, meta={"space": "RAS"})

    @property
    def shape(self) -> tuple[int, ...]:
        """The RAS-oriented spatial shape."""
        return tuple(self.oriented.shape[1:])

    @property
    def affine(self) -> np.ndarray:
        """The RAS-oriented affine (float64)."""
        return np.asarray(self.oriented.affine, dtype=np.float64)

    def file_box(self, lo: Sequence[int], hi: Sequence[int]) -> tuple[slice, ...]:
        """The file's index ranges of the RAS box ``[lo, hi)``."""
        out = []
        for (axis, flip), n in zip(self.ornt, self.file_shape, strict=True):
            a, b = lo[int(axis)], hi[int(axis)]
            out.append(slice(n - b, n - a) if flip < 0 else slice(a, b))
        return tuple(out)

    def to_ras(self, block: np.ndarray) -> np.ndarray:
        """A block read in file order, flipped and transposed into RAS order."""
        import nibabel as nib

        return nib.orientations.apply_orientation(block, self.ornt)

    def read(self, region: tuple[slice, ...]) -> np.ndarray:
        """Voxels of a file-order region, as MONAI's loader reads them (scaled by nibabel)."""
        return np.asanyarray(self.nifti.dataobj[region])

    def box(self, lo: Sequence[int], hi: Sequence[int], voxels: np.ndarray):
        """``voxels`` (RAS order, the box ``[lo, hi)``) as the MetaTensor ``SpatialCrop`` cuts
        from the oriented volume: same data, same affine and metadata."""
        from monai.data import MetaTensor
        from monai.transforms import SpatialCrop

        where = SpatialCrop(roi_start=list(lo), roi_end=list(hi))(self.oriented)
        out = MetaTensor(torch.from_numpy(np.ascontiguousarray(voxels)[None]))
        return out.copy_meta_from(where)


@functools.lru_cache(maxsize=8)
def _resample_window(spacing_mm: float, hu_window: tuple[float, float]):
    """MONAI: isotropic resampling, then the HU window mapped to [0, 1] (clipped)."""
    from monai.transforms import Compose, ScaleIntensityRanged, Spacingd

    return Compose(
        [
            # Bilinear CT; nearest keeps the mask's instance labels exact.
            Spacingd(
                ("image", "mask"),
                pixdim=(spacing_mm,) * 3,
                mode=("bilinear", "nearest"),
                dtype=np.float32,  # MONAI resamples in float64 by default: 2x the time
            ),
            ScaleIntensityRanged(
                "image", a_min=hu_window[0], a_max=hu_window[1], b_min=0.0, b_max=1.0, clip=True
            ),
        ]
    )


def _as_labels(values: np.ndarray) -> np.ndarray:
    """Instance labels of mask voxels as MONAI's path reads them: float32, rounded, int64."""
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64)
    return np.round(values.astype(np.float32)).astype(np.int64)


def _centroids(volume: _Volume, labels: np.ndarray) -> dict[int, np.ndarray]:
    """RAS voxel centroid of every positive label of ``labels`` (the mask in file order).

    Only the lesion voxels are visited (the old path summed the indices of every voxel of the
    volume, 13 M at 512x512x48: half of a clinical crop's time). The sums of voxel indices are
    integers below 2**53, so they are exact in float64 in any order, and a flipped axis's sum is
    ``count * (n - 1) - sum``: the centroids are the old path's to the last bit.
    """
    order = "F" if labels.flags.f_contiguous and not labels.flags.c_contiguous else "C"
    flat = labels.ravel(order=order)
    integer = np.issubdtype(flat.dtype, np.integer)
    if not integer:  # compared as the old path compared: in float32, rounding to 0 up to 0.5
        flat = np.where(np.abs(flat.astype(np.float32)) > 0.5, flat.astype(np.float32), 0)
    # Slabs along the axis slowest in memory; the lesion voxels of the slabs that hold any: one
    # vectorised pass over the volume, then a search of a few slabs.
    slabs = flat.reshape(labels.shape[-1] if order == "F" else labels.shape[0], -1)
    used = [k for k, slab in enumerate(slabs) if slab.any()]
    width = slabs.shape[1]
    found = [k * width + np.flatnonzero(slabs[k]) for k in used]
    inside = np.concatenate(found) if found else np.zeros(0, np.int64)
    values = _as_labels(flat[inside])
    if len(values) and values.min() < 0:
        raise ValueError(f"{volume.path}: negative mask labels {sorted(set(values[values < 0]))}")
    counts = np.bincount(values) if len(values) else np.zeros(1, np.int64)
    positions = np.unravel_index(inside, labels.shape, order=order)
    sums = [np.bincount(values, weights=p, minlength=len(counts)) for p in positions]
    ras = [None] * 3
    for file_axis, ((axis, flip), n) in enumerate(zip(volume.ornt, volume.file_shape, strict=True)):
        total = sums[file_axis]
        ras[int(axis)] = counts * (n - 1) - total if flip < 0 else total
    return {
        int(label): np.array([s[label] for s in ras]) / counts[label]
        for label in np.flatnonzero(counts)
        if label > 0
    }


def _cube(volume: torch.Tensor, centre_voxel: np.ndarray, size: int) -> torch.Tensor:
    """A ``size``³ cube of ``volume`` ([C, x, y, z]) centred on a (fractional) voxel position;
    outside the volume it is padded with 0 (the window minimum: air).

    SpatialCrop clips at the border, so the missing side is padded explicitly with BorderPad
    (SpatialPad pads both sides equally, which would move the lesion off the centre).
    """
    from monai.transforms import BorderPad, SpatialCrop

    # round(c - (size-1)/2) puts the centroid within half a voxel of the cube's centre.
    start = np.round(centre_voxel - (size - 1) / 2).astype(int)
    stop = start + size
    shape = np.asarray(volume.shape[1:])
    lo, hi = np.clip(start, 0, shape), np.clip(stop, 0, shape)
    if np.any(hi <= lo):
        return torch.zeros((volume.shape[0], size, size, size), dtype=volume.dtype)
    cropped = SpatialCrop(roi_start=lo.tolist(), roi_end=hi.tolist())(volume)
    border = [int(v) for pair in zip(lo - start, stop - hi, strict=True) for v in pair]
    if any(border):
        cropped = BorderPad(spatial_border=border, mode="constant", value=0.0)(cropped)
    return torch.as_tensor(cropped).as_subclass(torch.Tensor)


def crop_patient(
    image_path: str,
    mask_path: str,
    spacing_mm: float,
    size: int,
    hu_window: tuple[float, float],
) -> dict[str, np.ndarray]:
    """Crops of every lesion label of one patient: ``labels`` [L], ``ct`` [L, s, s, s] float16 in
    [0, 1], ``mask`` [L, s, s, s] uint8, ``distance`` [L, s, s, s] float16 (the signed distance
    channel, :func:`scaled_distance`), ``centre_mm`` [L, 3] (RAS), ``spacing_mm``.

    In RAS orientation, each lesion's centre is the centroid of its voxels on the acquired grid
    (so a lesion smaller than one resampled voxel still has one). Only a box around the lesion
    (the cube plus 2 acquired voxels) is read and resampled, not the whole CT: the cost grows
    with the lesions, not with the CT (at 512², reading and reorienting the whole CT and mask
    was 0.5-0.6 s per patient). The resampled grid is anchored at the box corner, and the cube
    is then cut around the centre mapped into that grid.
    """
    image, mask = _Volume(image_path), _Volume(mask_path)
    labelmap = np.asanyarray(mask.nifti.dataobj)
    affine = mask.affine
    centres_voxel = _centroids(mask, labelmap)
    centres = {k: (affine @ np.append(v, 1.0))[:3] for k, v in centres_voxel.items()}
    to_voxel = np.linalg.inv(affine)
    acquired_mm = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    reach = size * spacing_mm / 2 / acquired_mm + 2  # acquired voxels from the centre to keep
    shape = np.asarray(image.shape)
    labels = sorted(centres)
    boxes = {}
    for label in labels:
        voxel = (to_voxel @ np.append(centres[label], 1.0))[:3]
        lo = np.clip(np.floor(voxel - reach), 0, shape).astype(int).tolist()
        hi = np.clip(np.ceil(voxel + reach) + 1, 0, shape).astype(int).tolist()
        boxes[label] = (lo, hi)
    # One read of the CT covering every box (file order), then each box cut from it.
    region = None
    if boxes:
        spans = [image.file_box(lo, hi) for lo, hi in boxes.values()]
        region = tuple(
            slice(min(s[d].start for s in spans), max(s[d].stop for s in spans)) for d in range(3)
        )
        ct_region = image.read(region)
    resample = _resample_window(spacing_mm, hu_window)
    cts, masks, distances = [], [], []
    for label in labels:
        lo, hi = boxes[label]
        inner = tuple(
            slice(s.start - r.start, s.stop - r.start)
            for s, r in zip(image.file_box(lo, hi), region, strict=True)
        )
        ct_box = image.box(lo, hi, image.to_ras(ct_region[inner]).astype(np.float32))
        in_mask = mask.to_ras(labelmap[mask.file_box(lo, hi)])
        lesion = (np.round(in_mask.astype(np.float32)) == label).astype(np.float32)
        sub = resample({"image": ct_box, "mask": mask.box(lo, hi, lesion)})
        centre = np.append(centres[label], 1.0)
        at = (np.linalg.inv(np.asarray(sub["image"].affine, dtype=np.float64)) @ centre)[:3]
        cts.append(_cube(sub["image"], at, size)[0])
        masks.append(_cube(sub["mask"], at, size)[0])
    empty = (0, size, size, size)
    mask_crops = (
        torch.stack(masks).numpy().round().astype(np.uint8) if masks else np.zeros(empty, np.uint8)
    )
    distances = [scaled_distance(m, spacing_mm) for m in mask_crops]
    return {
        "labels": np.asarray(labels, dtype=np.int64),
        "ct": torch.stack(cts).numpy().astype(np.float16) if cts else np.zeros(empty, np.float16),
        "mask": mask_crops,
        "distance": np.stack(distances) if distances else np.zeros(empty, np.float16),
        "centre_mm": np.asarray([centres[k] for k in labels], dtype=np.float64).reshape(-1, 3),
        "spacing_mm": np.float64(spacing_mm),
    }


def _crop_job(patient_id: str, image: str, mask: str, *settings: Any) -> dict[str, np.ndarray]:
    try:
        with torch_threads(1):
            return crop_patient(image, mask, *settings)
    except Exception as exc:
        raise CropError(
            f"crops: cannot crop patient {patient_id!r} (image {image}, mask {mask}): "
            f"{type(exc).__name__}: {exc}"
        ) from None


def _init_worker() -> None:
    """One torch thread per worker: the pool is the parallelism."""
    torch.set_num_threads(1)


def signed_distance(mask: np.ndarray, spacing_mm: float) -> np.ndarray:
    """Signed distance (mm) of every voxel of a binary crop to the lesion surface, < 0 inside."""
    from scipy import ndimage

    inside = np.asarray(mask) > 0
    if not inside.any():
        return np.full(inside.shape, DISTANCE_SCALE_MM, dtype=np.float32)
    outside = ndimage.distance_transform_edt(~inside, sampling=spacing_mm)
    depth = ndimage.distance_transform_edt(inside, sampling=spacing_mm)
    return (outside - depth).astype(np.float32)


def scaled_distance(mask: np.ndarray, spacing_mm: float) -> np.ndarray:
    """The ``distance`` label channel of a binary crop: :func:`signed_distance` divided by
    :data:`DISTANCE_SCALE_MM`, clipped to [-1, 1], in half precision (as the cached CT: every
    reader, the throughput stream included, then feeds a network the same numbers).

    Stored in the crop cache: two distance transforms per lesion cost more than reading its
    crop, and every fit and predict of a run reads the crops again. Computed on boxes, to the
    same values: the depth inside on the lesion's bounding box plus one voxel (the nearest
    outside voxel is within it), the distance outside on that box plus the clipping distance
    (every voxel beyond is clipped to 1).
    """
    from scipy import ndimage

    inside = np.asarray(mask) > 0
    out = np.ones(inside.shape, dtype=np.float32)
    if not inside.any():
        return out.astype(np.float16)
    where = np.argwhere(inside)
    first, last = where.min(axis=0), where.max(axis=0) + 1

    def box(margin: int) -> tuple[slice, ...]:
        return tuple(
            slice(max(0, a - margin), min(n, b + margin))
            for a, b, n in zip(first, last, inside.shape, strict=True)
        )

    near = box(int(DISTANCE_SCALE_MM // spacing_mm) + 1)
    outside = ndimage.distance_transform_edt(~inside[near], sampling=spacing_mm)
    deep = box(1)
    depth = np.zeros(outside.shape)
    within = tuple(
        slice(d.start - n.start, d.stop - n.start) for d, n in zip(deep, near, strict=True)
    )
    depth[within] = ndimage.distance_transform_edt(inside[deep], sampling=spacing_mm)
    out[near] = (outside - depth).astype(np.float32) / DISTANCE_SCALE_MM
    return np.clip(out, -1, 1).astype(np.float16)


def lesion_channels(
    ct: np.ndarray,
    mask: np.ndarray,
    label_channel: str | None,
    spacing_mm: float,
    distance: np.ndarray | None = None,
) -> np.ndarray:
    """Network input of cached crops (``ct``, ``mask``, and ``distance`` when cached: [L, s, s, s]):
    float32 [L, C, s, s, s]. A missing ``distance`` is computed from ``mask``."""
    if label_channel not in LABEL_CHANNELS:
        raise ValueError(
            f"crops: label_channel must be one of {LABEL_CHANNELS}, got {label_channel!r}"
        )
    channels = 1 if label_channel is None else 2
    out = np.empty((len(ct), channels, *ct.shape[1:]), dtype=np.float32)
    out[:, 0] = ct
    if label_channel == "mask":
        out[:, 1] = mask
    elif label_channel == "distance" and distance is not None:
        out[:, 1] = distance
    elif label_channel == "distance":
        for i in range(len(ct)):
            out[i, 1] = scaled_distance(mask[i], spacing_mm)
    return out


# ---- the extractor ------------------------------------------------------------------------------


class LesionCrops:
    """Fixed-physical-size crops of every lesion of a cohort, cached on disk by content key.

    Hydra-instantiable (``conf/crops/default.yaml``). ``spacing_mm`` is the isotropic voxel size,
    ``size_mm`` the cube's edge (``size = round(size_mm / spacing_mm)`` voxels), ``hu_window``
    the HU range mapped to [0, 1]. ``label_channel`` (one of :data:`LABEL_CHANNELS`) is computed
    from the cached mask when the crops are read, so it is not part of ``key``. ``cache_dir=None``
    disables the cache. ``workers`` > 1 crops patients in a process pool when that pays for its
    start-up (same result either way).
    """

    def __init__(
        self,
        cache_dir: str | Path | None,
        workers: int = 1,
        spacing_mm: float = 1.5,
        size_mm: float = 48.0,
        hu_window: Sequence[float] = (-1000.0, 400.0),
        label_channel: str | None = "distance",
        progress: bool = True,
    ) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.workers = max(1, int(workers or 1))
        self.spacing_mm = float(spacing_mm)
        self.size_mm = float(size_mm)
        self.hu_window = (float(hu_window[0]), float(hu_window[1]))
        if label_channel not in LABEL_CHANNELS:
            raise ValueError(
                f"crops: label_channel must be one of {LABEL_CHANNELS}, got {label_channel!r}"
            )
        self.label_channel = label_channel
        self.progress = bool(progress)
        if self.spacing_mm <= 0 or self.size_mm < self.spacing_mm:
            raise ValueError(
                f"crops: need spacing_mm > 0 and size_mm >= spacing_mm, got {spacing_mm}, {size_mm}"
            )
        if self.hu_window[1] <= self.hu_window[0]:
            raise ValueError(f"crops: hu_window must be [low, high] with low < high: {hu_window}")
        blob = json.dumps(self.settings, sort_keys=True, separators=(",", ":"))
        self._key = hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def size(self) -> int:
        """Edge of the crop cube in voxels."""
        return round(self.size_mm / self.spacing_mm)

    @property
    def channels(self) -> int:
        return 1 if self.label_channel is None else 2

    @property
    def settings(self) -> dict[str, Any]:
        """Everything that changes the cached voxels."""
        import monai

        return {
            "spacing_mm": self.spacing_mm,
            "size_mm": self.size_mm,
            "size": self.size,
            "hu_window": list(self.hu_window),
            "crop_version": CROP_VERSION,
            "monai": monai.__version__,
        }

    @property
    def key(self) -> str:
        """Hash of :attr:`settings`: the cache folder of these crops."""
        return self._key

    def cache_path(self, content_key: str) -> Path | None:
        if self.cache_dir is None:
            return None
        name = str(content_key).removeprefix("sha256:")
        if not _SAFE_NAME.match(name):
            name = hashlib.sha256(name.encode()).hexdigest()
        return self.cache_dir / self.key / f"{name}.npz"

    def _read_cache(self, content_key: str) -> dict[str, np.ndarray] | None:
        path = self.cache_path(content_key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path) as npz:
                return {name: npz[name] for name in npz.files}
        except (OSError, ValueError, KeyError) as exc:
            log.warning("crop cache %s unreadable (%s); recomputing", path, exc)
            return None

    def _write_cache(self, content_key: str, arrays: dict[str, np.ndarray]) -> None:
        path = self.cache_path(content_key)
        if path is None:
            return
        with unless_read_only(path.parent):
            write_atomic(path, lambda fh: np.savez(fh, **arrays))
            spec = path.parent / "crops.json"
            if not spec.exists():
                text = json.dumps({"key": self.key, **self.settings}, indent=1).encode()
                write_atomic(spec, text)

    def __call__(self, cohort: Cohort) -> tuple[np.ndarray, list[str]]:
        """Crops of every lesion of ``cohort``: float32 ``[n_lesions, C, s, s, s]`` (C = ct, then
        the ``label_channel``), and the lesion ids in ``cohort.lesions`` order."""
        lesions = cohort.lesions
        patients = list(dict.fromkeys(str(p) for p in lesions["patient_id"]))
        found: dict[str, dict[str, np.ndarray]] = {}
        todo = []
        for pid in patients:
            cached = self._read_cache(cohort.content_keys[pid])
            if cached is None:
                todo.append(pid)
            else:
                found[pid] = cached
        with tqdm(
            total=len(patients),
            initial=len(patients) - len(todo),
            desc=f"crops {cohort.name}",
            unit="patient",
            disable=not self.progress,
        ) as bar:
            for pid, arrays in self._run(cohort, todo):
                self._write_cache(cohort.content_keys[pid], arrays)
                found[pid] = arrays
                bar.update(1)

        cube = (len(lesions), *(self.size,) * 3)
        ct, mask = np.zeros(cube, dtype=np.float16), np.zeros(cube, dtype=np.uint8)
        distance = np.zeros(cube, dtype=np.float16) if self.label_channel == "distance" else None
        rows = zip(
            lesions.index, lesions["patient_id"].astype(str), lesions["mask_label"], strict=True
        )
        for i, (lesion_id, pid, label) in enumerate(rows):
            arrays = found[pid]
            where = np.flatnonzero(arrays["labels"] == int(label))
            if len(where) == 0:
                raise CropError(
                    f"crops: mask_label {label} of lesion {lesion_id!r} (patient {pid!r}) is not "
                    f"in mask {cohort.masks[pid]}; labels present: {arrays['labels'].tolist()}"
                )
            ct[i], mask[i] = arrays["ct"][where[0]], arrays["mask"][where[0]]
            if distance is not None:
                distance[i] = arrays["distance"][where[0]]
        out = lesion_channels(ct, mask, self.label_channel, self.spacing_mm, distance)
        return out, [str(i) for i in lesions.index]

    def _run(self, cohort: Cohort, todo: list[str]) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
        """Yield ``(patient_id, arrays)`` for every patient of ``todo``."""
        settings = (self.spacing_mm, self.size, self.hu_window)
        jobs = [(pid, str(cohort.images[pid]), str(cohort.masks[pid]), *settings) for pid in todo]
        results = run_jobs(_crop_job, jobs, self.workers, _init_worker, startup_s=POOL_STARTUP_S)
        for job, arrays in results:
            yield job[0], arrays

    def __repr__(self) -> str:
        return (
            f"LesionCrops(key={self.key}, spacing_mm={self.spacing_mm}, size_mm={self.size_mm} "
            f"({self.size} voxels), hu_window={list(self.hu_window)}, "
            f"label_channel={self.label_channel}, workers={self.workers}, "
            f"cache_dir={self.cache_dir})"
        )


# ---- 2.5D views ---------------------------------------------------------------------------------

VIEW_MODES = ("orthogonal", "axial")


def views_25d(
    crops: np.ndarray | torch.Tensor, mode: str = "orthogonal", n_slices: int = 3
) -> np.ndarray | torch.Tensor:
    """2D images from cubic crops ``[n, C, x, y, z]`` for 2D backbones.

    ``orthogonal``: the axial (z), coronal (y) and sagittal (x) planes through the cube's centre,
    ``[n, 3*C, s, s]`` ordered plane by plane (axial channels first). ``axial``: ``n_slices``
    adjacent axial slices centred on the middle one, ``[n, n_slices*C, s, s]``, inferior first.
    Works on numpy arrays and torch tensors (on any device), returning the same kind.
    """
    as_numpy = isinstance(crops, np.ndarray)
    x = torch.from_numpy(crops) if as_numpy else crops
    if x.ndim != 5 or not (x.shape[2] == x.shape[3] == x.shape[4]):
        raise ValueError(f"views_25d: expected cubic crops [n, C, s, s, s], got {tuple(x.shape)}")
    size = x.shape[-1]
    mid = size // 2
    if mode == "orthogonal":
        planes = [x[:, :, :, :, mid], x[:, :, :, mid, :], x[:, :, mid, :, :]]
    elif mode == "axial":
        if not 1 <= n_slices <= size:
            raise ValueError(f"views_25d: n_slices must be in [1, {size}], got {n_slices}")
        first = mid - n_slices // 2
        planes = [x[:, :, :, :, z] for z in range(first, first + n_slices)]
    else:
        raise ValueError(f"views_25d: mode must be one of {VIEW_MODES}, got {mode!r}")
    out = torch.cat(planes, dim=1).contiguous()
    return out.numpy() if as_numpy else out


def view_channels(channels: int, mode: str, n_slices: int = 3) -> int:
    """Channels of :func:`views_25d`'s output for crops with ``channels`` channels."""
    return channels * (3 if mode == "orthogonal" else n_slices)


__all__ = [
    "CROP_VERSION",
    "DISTANCE_SCALE_MM",
    "LABEL_CHANNELS",
    "CropError",
    "LesionCrops",
    "crop_patient",
    "lesion_channels",
    "scaled_distance",
    "signed_distance",
    "view_channels",
    "views_25d",
]
