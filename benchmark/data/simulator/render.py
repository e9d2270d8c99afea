"""One patient's CT and mask: phantom, lesions, then the cohort's scanner acquisition.

Each patient has its own random stream, so patients render in any order or process.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from benchmark.data.simulator.grid import Grid
from benchmark.data.simulator.lesions import Shape, draw_lesion
from benchmark.data.simulator.lung import realistic_lung
from benchmark.data.simulator.phantom import LUNG, VESSEL, draw_phantom
from benchmark.data.simulator.placement import Placer
from benchmark.data.simulator.scanner import ct_noise
from benchmark.data.simulator.streams import (
    STREAM_ANATOMY,
    STREAM_RENDER,
    cohort_code,
    stream_rng,
)
from benchmark.data.simulator.tables import SimulatedTables

_HU_RANGE = (-1024, 3071)


@dataclass(frozen=True)
class RenderedPatient:
    """One patient's CT (HU, int16), instance mask and phantom tissue labels; arrays (z, y, x)."""

    patient_id: str
    image: np.ndarray
    mask: np.ndarray
    anatomy: np.ndarray
    spacing: tuple[float, float, float]  # x, y, z (mm), as SimpleITK
    origin: tuple[float, float, float]


def _acquire(
    rng: np.random.Generator,
    hu: np.ndarray,
    grid: Grid,
    acq: Mapping,
    averaged: np.ndarray | None = None,
) -> np.ndarray:
    """Scanner: PSF blur (plus the slice profile in z), kernel-grained noise, offset, int16.

    ``hu`` is sampled at voxel centres, so it gets the slice profile too; ``averaged`` (added
    to it) is already each voxel's mean over its volume (the realistic lungs' texture and
    vessels) and gets the PSF alone: the slice profile again would average it twice.
    """
    sx, sy, sz = grid.spacing
    blur = float(acq["blur_mm"])
    sigma_z = math.sqrt(blur**2 + (sz / 2.355) ** 2)
    image = ndimage.gaussian_filter(
        hu, (sigma_z / sz, blur / sy, blur / sx), mode="nearest", truncate=3.0
    )
    if averaged is not None:
        image += ndimage.gaussian_filter(
            averaged, (blur / sz, blur / sy, blur / sx), mode="nearest", truncate=3.0
        )
    noise = rng.standard_normal(hu.shape, dtype=np.float32)
    corr = float(acq.get("noise_corr_mm", 0.0))
    if acq.get("noise_model") == "ct":
        noise = ct_noise(noise, grid, float(acq["kernel_cutoff_per_mm"]))
    elif corr > 0:
        noise = ndimage.gaussian_filter(noise, (0.0, corr / sy, corr / sx), truncate=3.0)
        noise /= max(float(noise.std()), 1e-6)
    image += np.float32(acq["noise_hu"]) * noise + np.float32(acq["hu_offset"])
    return np.clip(np.rint(image), *_HU_RANGE).astype(np.int16)


def render(spec: Mapping[str, Any], peritumoral: bool = True) -> RenderedPatient:
    """One patient from its ``SimulatedTables.render_spec`` (small, picklable: for workers)."""
    code = cohort_code(spec["cohort"])
    rng = stream_rng(spec["seed"], code, STREAM_RENDER, spec["index"])
    grid = Grid(spec["acquisition"], spec["fov_mm"])
    lab, hu, geometry = draw_phantom(rng, grid)
    mask = np.zeros(grid.shape, np.uint8 if len(spec["lesions"]) < 256 else np.uint16)
    placer = Placer(rng, grid, lab, geometry)
    shapes = [Shape(rng, lesion) for lesion in spec["lesions"]]
    order = sorted(range(len(shapes)), key=lambda n: -shapes[n].rmax)  # largest first
    lungs = spec.get("anatomy", {}).get("lung")
    aerated = np.isin(lab, (LUNG, VESSEL)) if lungs else None
    for n in order:
        lesion, shape = spec["lesions"][n], shapes[n]
        centre, normal = placer.place(lesion["site"], shape, float(lesion["halo_mm"]))
        draw_lesion(rng, grid, hu, lab, mask, lesion, shape, centre, normal, peritumoral)
    averaged = None
    if lungs:  # after the lesions: they sit where they would
        anatomy_rng = stream_rng(spec["seed"], code, STREAM_ANATOMY, spec["index"])
        averaged = realistic_lung(anatomy_rng, grid, lab, hu, lungs, aerated)
    image = _acquire(rng, hu, grid, spec["acquisition"], averaged)
    return RenderedPatient(
        patient_id=spec["patient_id"],
        image=image,
        mask=mask,
        anatomy=lab,
        spacing=tuple(float(s) for s in grid.spacing),
        origin=tuple(float(o) for o in grid.origin),
    )


def render_patient(
    tables: SimulatedTables, patient: int | str, peritumoral: bool = True
) -> RenderedPatient:
    """The CT, mask and tissue labels of one patient (by index or id), as ``simulate`` writes it.

    ``peritumoral=False`` renders the same patient without the lesions' margins (same placement,
    same noise), so the difference of the two images is the margin after the scanner's blur.
    """
    if isinstance(patient, str):
        matches = np.flatnonzero(tables.patients["patient_id"].to_numpy() == patient)
        if len(matches) != 1:
            raise KeyError(f"no patient {patient!r} in {tables.cohort}")
        patient = int(matches[0])
    return render(tables.render_spec(patient), peritumoral)
