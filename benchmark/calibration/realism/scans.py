"""The CT volumes the realism yardstick compares: real chest CT with lesion masks, and the
simulated cohorts' scans, brought to one grid so that resolution alone cannot tell them apart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

# The common grid (x, y, z mm): the coarsest spacing of the sources along each axis (the
# simulated NIVORAD in-plane 1.6 mm, the real scans' 5 mm slices). Finer scans are smoothed
# before they are resampled, so that both sides carry the same band of frequencies.
COMMON_SPACING_MM = (1.6, 1.6, 5.0)

# pyradiomics' two NSCLC CTs (512^2, 0.57-0.63 mm pixels, 5 mm slices), fetched by
# `make fixtures` into .fixtures/pyradiomics.
REAL_SCANS = ("lung1", "lung2")
REAL = "real"


class RealismInputError(FileNotFoundError):
    """The real CT or the simulated cohorts the yardstick needs are not where it looks."""


@dataclass(frozen=True)
class Scan:
    """One CT and its lung lesions, on the grid it was read on (arrays z, y, x)."""

    name: str
    source: str  # "real" or the simulated cohort
    kernel: str  # the reconstruction kernel as the source states it ("unknown" for real)
    hu: np.ndarray  # float32
    lesions: np.ndarray  # bool: the scan's lung lesions
    spacing: tuple[float, float, float]  # x, y, z mm

    def on_common_grid(self) -> Scan:
        """This scan smoothed and resampled to :data:`COMMON_SPACING_MM` (linear for HU,
        nearest for the lesion mask)."""
        zyx_in = np.array(self.spacing[::-1])
        zyx_out = np.array(COMMON_SPACING_MM[::-1])
        # A Gaussian of sigma ~ 0.4 output voxels per axis where the output is coarser
        # (anti-aliasing); none where the input is already as coarse.
        sigma_mm = 0.4 * np.sqrt(np.clip(zyx_out**2 - zyx_in**2, 0.0, None))
        hu = ndimage.gaussian_filter(self.hu, sigma_mm / zyx_in) if sigma_mm.any() else self.hu
        zoom = zyx_in / zyx_out
        hu = ndimage.zoom(hu, zoom, order=1, mode="nearest", grid_mode=True)
        lesions = ndimage.zoom(
            self.lesions.astype(np.uint8), zoom, order=0, mode="grid-constant", grid_mode=True
        )
        return Scan(
            self.name,
            self.source,
            self.kernel,
            hu.astype(np.float32),
            lesions > 0,
            COMMON_SPACING_MM,
        )


def _read(image: Path, mask: Path, labels: Sequence[int] | None) -> tuple:
    img = sitk.ReadImage(str(image))
    hu = sitk.GetArrayFromImage(img).astype(np.float32)
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(mask)))
    if lab.shape != hu.shape:
        raise RealismInputError(f"{mask}: mask shape {lab.shape} differs from {image} {hu.shape}")
    keep = lab > 0 if labels is None else np.isin(lab, list(labels))
    return hu, keep, tuple(float(s) for s in img.GetSpacing())


def real_scans(folder: Path) -> list[Scan]:
    """pyradiomics' lung1 and lung2 (``<name>_image.nrrd``, ``<name>_label.nrrd``)."""
    scans = []
    for name in REAL_SCANS:
        image, mask = folder / f"{name}_image.nrrd", folder / f"{name}_label.nrrd"
        if not (image.is_file() and mask.is_file()):
            raise RealismInputError(
                f"real CT {image} (and its label) not found; fetch it with `make fixtures` "
                "(python tests/fetch_fixtures.py) or pass --real DIR"
            )
        hu, lesions, spacing = _read(image, mask, None)
        scans.append(Scan(name, REAL, "unknown", hu, lesions, spacing))
    return scans


def simulated_scans(
    root: Path, cohorts: Sequence[str], kernels: dict[str, str], per_cohort: int
) -> list[Scan]:
    """Up to ``per_cohort`` patients of each cohort with a lung lesion (in id order, so the
    choice is fixed), with their lung lesions as the lesion mask."""
    scans = []
    for cohort in cohorts:
        lesions_csv = root / cohort / "lesions.csv"
        if not lesions_csv.is_file():
            raise RealismInputError(f"{lesions_csv} not found: is {root} a simulated dataset?")
        lesions = pd.read_csv(lesions_csv)
        lung = lesions[lesions["site"] == "lung"]
        for patient in sorted(lung["patient_id"].unique())[:per_cohort]:
            labels = lung.loc[lung["patient_id"] == patient, "mask_label"].astype(int).tolist()
            hu, mask, spacing = _read(
                root / cohort / "images" / f"{patient}.nii.gz",
                root / cohort / "masks" / f"{patient}.nii.gz",
                labels,
            )
            scans.append(Scan(patient, cohort, kernels.get(cohort, "unknown"), hu, mask, spacing))
    return scans
