"""The CT volumes the realism yardstick compares: real chest CT with lesion masks, and the
simulated cohorts' scans, brought to one grid so that resolution alone cannot tell them apart."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from tqdm.auto import tqdm

from benchmark.data.simulator import simulate_tables
from benchmark.data.simulator.render import render
from benchmark.utils.pool import run_jobs

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
    profile: Mapping[str, Any],
    seed: int,
    kernels: dict[str, str],
    per_cohort: int,
    workers: int = 2,
    progress: bool = True,
) -> list[Scan]:
    """Up to ``per_cohort`` patients of each cohort with a lung lesion (in id order, so the
    choice is fixed), with their lung lesions as the lesion mask.

    Only these patients are rendered, in memory: the same voxels as the cohorts ``simulate``
    writes (the renderer draws each patient from its own stream), without the other 250 of
    266 patients a full simulation would render first (a minute rather than 3-4 for a profile
    variant).
    """
    jobs = []
    for tables in simulate_tables(profile, seed).values():
        lung = tables.lesions[tables.lesions["site"] == "lung"]
        ids = tables.patients["patient_id"].tolist()
        for patient in sorted(lung["patient_id"].unique())[:per_cohort]:
            labels = lung.loc[lung["patient_id"] == patient, "mask_label"].astype(int).tolist()
            jobs.append((tables.render_spec(ids.index(patient)), labels))
    scans: dict[tuple[str, str], Scan] = {}  # the pool yields them as they finish
    done = run_jobs(_render_scan, jobs, workers)
    for (spec, _), (hu, lesions, spacing) in tqdm(
        done, total=len(jobs), desc="render", unit="scan", disable=not progress
    ):
        kernel = kernels.get(spec["cohort"], "unknown")
        key = (spec["cohort"], spec["patient_id"])
        scans[key] = Scan(spec["patient_id"], spec["cohort"], kernel, hu, lesions, spacing)
    return [scans[spec["cohort"], spec["patient_id"]] for spec, _ in jobs]


def _render_scan(spec: dict[str, Any], labels: list[int]) -> tuple:
    """Worker entry: one patient's CT (HU, float32) and its lung lesions."""
    patient = render(spec)
    hu = patient.image.astype(np.float32)
    # The spacing as the NIfTI files hold it (float32), so that both paths give the same grid.
    spacing = tuple(float(np.float32(s)) for s in patient.spacing)
    return hu, np.isin(patient.mask, labels), spacing
