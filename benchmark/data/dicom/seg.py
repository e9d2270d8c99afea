"""DICOM SEG: read the manifest's segments onto the CT's grid; write one segment per lesion.

highdicom decodes the frames (binary or fractional, any frame order) into a volume; each of its
slices is then placed on the CT slice at the same position, so a SEG that stores only the frames
it needs, or stacks them the other way, still lands voxel for voxel.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmark.data.dicom.errors import DicomProblem
from benchmark.data.dicom.refs import check_refs
from benchmark.data.dicom.series import CtVolume, SeriesIds

# How far (in voxels) a SEG frame may sit from a CT voxel position and still be on it.
POSITION_TOL = 0.05


def _segment_numbers(seg, wanted: Sequence[str], patient: str, path: Path) -> list[int]:
    by_label: dict[str, list[int]] = {}
    for item in seg.SegmentSequence:
        by_label.setdefault(str(item.get("SegmentLabel", "")), []).append(int(item.SegmentNumber))
    numbers = [int(item.SegmentNumber) for item in seg.SegmentSequence]
    out = []
    for name in wanted:
        hits = by_label.get(name, [])
        if not hits and name.isdigit() and int(name) in numbers:
            hits = [int(name)]
        if len(hits) != 1:
            what = "is not" if not hits else f"names {len(hits)} segments ({hits}) "
            raise DicomProblem(
                patient,
                path,
                f"segment {name!r} {what} in this SEG; its segments are "
                + ", ".join(f"{n}: {label!r}" for label, ns in by_label.items() for n in ns)
                + "; expected each manifest roi to name one SegmentLabel (or SegmentNumber)",
            )
        out.append(hits[0])
    return out


def read_seg(
    patient: str, path: Path, ct: CtVolume, segments: Sequence[str]
) -> dict[str, np.ndarray]:
    """Boolean ``[z, y, x]`` masks on the CT grid, one per named segment (label or number)."""
    import highdicom as hd

    try:
        seg = hd.seg.segread(path)
    except Exception as exc:
        raise DicomProblem(
            patient, path, f"cannot read as DICOM SEG ({type(exc).__name__}: {exc})"
        ) from None
    check_refs(
        patient,
        path,
        "SEG",
        [seg.get("FrameOfReferenceUID", "")],
        [s.SeriesInstanceUID for s in seg.get("ReferencedSeriesSequence", [])],
        ct,
    )
    numbers = _segment_numbers(seg, segments, patient, path)
    try:
        volume = seg.get_volume(segment_numbers=numbers, combine_segments=False)
    except Exception as exc:
        raise DicomProblem(
            patient,
            path,
            f"cannot decode the SEG's frames as a volume ({type(exc).__name__}: {exc}); expected "
            "frames parallel to the CT's slices",
        ) from None
    array = np.asarray(volume.array)
    if array.ndim == 3:
        array = array[..., None]
    affine = np.asarray(volume.affine, dtype=float)
    grid = ct.grid
    steps = grid.matrix
    # The SEG's columns and rows must step like the CT's x and y (same orientation and spacing).
    if not (
        np.allclose(affine[:3, 2], steps[:, 0], atol=1e-3)
        and np.allclose(affine[:3, 1], steps[:, 1], atol=1e-3)
    ):
        raise DicomProblem(
            patient,
            path,
            "SEG pixel grid (orientation or pixel spacing) differs from the CT's; expected "
            "segmentation frames on the CT's pixel grid",
        )
    nz, ny, nx = grid.size[2], grid.size[1], grid.size[0]
    if array.shape[1:3] != (ny, nx):
        raise DicomProblem(
            patient,
            path,
            f"SEG frames are {array.shape[1]}x{array.shape[2]} pixels, the CT's {ny}x{nx}; "
            "expected frames of the CT's size",
        )
    masks = {name: np.zeros((nz, ny, nx), dtype=bool) for name in segments}
    for s in range(array.shape[0]):
        plane = array[s]
        if not plane.any():
            continue
        where = grid.to_index((affine @ np.array([s, 0, 0, 1.0]))[None, :3])[0]
        k = int(np.round(where[2]))
        if (
            np.abs(where[:2]).max() > POSITION_TOL
            or abs(where[2] - k) > POSITION_TOL
            or not (0 <= k < nz)
        ):
            mm = affine[:3, 3] + affine[:3, 0] * s
            raise DicomProblem(
                patient,
                path,
                f"a SEG frame at ({mm[0]:.2f}, {mm[1]:.2f}, {mm[2]:.2f}) mm is on no slice of the "
                f"CT series {ct.series_uid} (nearest slice index {where[2]:.2f}); expected "
                "frames on the CT's slices",
            )
        for i, name in enumerate(segments):
            masks[name][k] |= plane[..., i] > 0.5  # fractional SEGs come back in [0, 1]
    return masks


def write_seg(
    path: Path,
    ct_datasets: Sequence,
    masks: Sequence[tuple[str, np.ndarray]],
    ids: SeriesIds,
) -> None:
    """One binary SEG with one segment per ``(label, [z, y, x] mask)``, on the written CT."""
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=i + 1,
            segment_label=label,
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Lesion,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for i, (label, _) in enumerate(masks)
    ]
    pixels = np.stack([m.astype(bool) for _, m in masks], axis=-1)
    seg = hd.seg.Segmentation(
        source_images=list(ct_datasets),
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=2,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="nsclc-io-bench",
        manufacturer_model_name="export-dicom",
        software_versions="1",
        device_serial_number="0",
        content_label="LESIONS",
    )
    assert seg.FrameOfReferenceUID == ids.frame_of_reference
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path)


__all__ = ["read_seg", "write_seg"]
