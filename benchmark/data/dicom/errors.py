"""What a DICOM import or export refuses: one :class:`DicomProblem` per fault, all at once.

A site converting a trial's DICOM fixes its files from these messages, so each names the patient,
the file and what was expected; :class:`DicomImportError` carries every problem of a run, so
one pass shows them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DicomProblem(Exception):
    """One fault of one patient's DICOM: who, which file, what is wrong and what was expected."""

    patient: str | None
    file: str | Path | None
    message: str

    def __str__(self) -> str:
        who = f"patient {self.patient}" if self.patient else "manifest"
        where = f" ({self.file})" if self.file else ""
        return f"{who}{where}: {self.message}"


class DicomImportError(Exception):
    """The import (or export) wrote nothing: these are the problems that stopped it."""

    def __init__(self, problems: Sequence[DicomProblem | str]) -> None:
        self.problems = [str(p) for p in problems]
        n = len(self.problems)
        head = f"{n} problem{'' if n == 1 else 's'}; nothing was written"
        super().__init__("\n".join([*self.problems, head]))


__all__ = ["DicomImportError", "DicomProblem"]
