"""DICOM in and out of the cohort layout: CT series with RTSTRUCT or SEG lesions.

:func:`import_dicom` turns a site's DICOM (named per patient and lesion by a manifest) and its
clinical table into the cohort layout, all or nothing; :func:`export_dicom` writes a layout
cohort as DICOM with a manifest, to test a site's pipeline or the importer itself. One concept
per module: :mod:`.errors`, :mod:`.grid` (voxel <-> patient coordinates), :mod:`.polygons`,
:mod:`.series` (CT), :mod:`.seg`, :mod:`.rtstruct`, :mod:`.manifest`, :mod:`.importer`,
:mod:`.exporter`.
"""

from __future__ import annotations

from benchmark.data.dicom.errors import DicomImportError, DicomProblem

__all__ = ["DicomImportError", "DicomProblem", "export_dicom", "import_dicom"]


def __getattr__(name: str):
    # pydicom and highdicom load only when a DICOM command runs, not with benchmark.data.
    if name == "import_dicom":
        from benchmark.data.dicom.importer import import_dicom

        return import_dicom
    if name == "export_dicom":
        from benchmark.data.dicom.exporter import export_dicom

        return export_dicom
    raise AttributeError(name)
