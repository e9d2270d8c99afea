"""Does a segmentation object belong to the CT: its frame of reference and referenced series.

A mask drawn on another scan (a follow-up, a re-reconstruction) can fall inside the CT's field of
view and look plausible; the UIDs are what tells, so both SEG and RTSTRUCT go through here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from benchmark.data.dicom.errors import DicomProblem
from benchmark.data.dicom.series import CtVolume


def check_refs(
    patient: str,
    path: Path,
    kind: str,
    frames_of_reference: Iterable[str],
    series: Iterable[str],
    ct: CtVolume,
) -> None:
    """Raise unless the object's frame(s) of reference and referenced series are the CT's.

    An object that references no series at all passes on its frame of reference alone.
    """
    frames = sorted({str(f) for f in frames_of_reference if f})
    if frames != [ct.frame_of_reference]:
        raise DicomProblem(
            patient,
            path,
            f"{kind} FrameOfReferenceUID {', '.join(frames) or '(none)'} is not the CT's "
            f"{ct.frame_of_reference} (series {ct.series_uid}); expected a segmentation drawn "
            "on this CT",
        )
    referenced = sorted({str(s) for s in series if s})
    if referenced and ct.series_uid not in referenced:
        raise DicomProblem(
            patient,
            path,
            f"{kind} references series {', '.join(referenced)}, not the CT series "
            f"{ct.series_uid} named in the manifest; expected a segmentation of this series",
        )


__all__ = ["check_refs"]
