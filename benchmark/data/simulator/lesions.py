"""What a lesion looks like: its lobulated, spiculated surface and how it is drawn into a scan.

Shape, texture and necrosis (inside the mask) are the visible readouts of the lesion's latent
aggressiveness; the margin outside it (halo width and density) is the readout of its peritumoral
factor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import ndimage

from benchmark.data.simulator.grid import Grid
from benchmark.data.simulator.phantom import (
    ADRENAL,
    CORTEX,
    FAT,
    HALO,
    HEART,
    LESION,
    LIVER,
    LUNG,
    MARROW,
    SOFT,
    VESSEL,
)

# A pleural lesion is a lens, this flat along the wall normal (drawing and placement agree on it).
PLEURA_FLATTEN = 0.7


def _fibonacci_sphere(n: int) -> np.ndarray:
    k = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * k / n)
    theta = np.pi * (1 + 5**0.5) * k
    return np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], 1)


_SPHERE = _fibonacci_sphere(1500)


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class Shape:
    """The surface of one lesion: radius as a function of direction (lobulated, spiculated)."""

    def __init__(self, rng: np.random.Generator, lesion: Mapping[str, Any]):
        self.r0 = float(lesion["diameter_mm"]) / 2.0
        self.lobulation = float(lesion["lobulation"])
        self.lob_dirs = _unit(rng, 4)
        self.lob_freq = rng.integers(2, 6, 4).astype(float)
        self.lob_phase = rng.uniform(0, 2 * np.pi, 4)
        n = int(lesion["n_spicules"])
        self.spike_dirs = _unit(rng, n)
        self.spike_power = rng.uniform(15.0, 45.0, n)
        self.spike_rel = float(lesion["spicule_mm"]) * rng.uniform(0.6, 1.2, n) / self.r0
        self.clip = min(1.45 * self.r0, self.r0 + 10.0, 34.0)
        self.rmax = float(self.radius(np.vstack([_SPHERE, self.spike_dirs])).max())

    def radius(self, u: np.ndarray) -> np.ndarray:
        """Radius (mm) along unit directions u (..., 3)."""
        lob = np.zeros(u.shape[:-1])
        for w, f, p in zip(self.lob_dirs, self.lob_freq, self.lob_phase, strict=True):
            lob += np.cos(f * np.arccos(np.clip(u @ w, -1.0, 1.0)) + p)
        r = np.maximum(1.0 + self.lobulation * lob / math.sqrt(len(self.lob_freq)), 0.7)
        for v, power, rel in zip(self.spike_dirs, self.spike_power, self.spike_rel, strict=True):
            r += rel * np.maximum(u @ v, 0.0) ** power
        return np.minimum(self.r0 * r, self.clip)


def _smooth_field(rng: np.random.Generator, shape, sigma_vox) -> np.ndarray:
    field = ndimage.gaussian_filter(
        rng.standard_normal(shape, dtype=np.float32), sigma_vox, mode="nearest", truncate=3.0
    )
    return field / max(float(field.std()), 1e-6)


# The peritumoral margin by the tissue around the lesion: ground glass in aerated lung, stranding
# in fat, a hypo-attenuating (oedema) rim in solid organs, a permeative lytic rim in bone. Each
# moves the tissue's HU towards a target, by the margin's density and its fall-off with distance.
_GGO_HU = (-650.0, -350.0)  # faint .. dense ground glass
_STRANDING_HU = 10.0  # fat stranding target
_OEDEMA_HU = -40.0  # shift of a solid organ's rim at full density
_LYTIC_HU = 60.0  # bone rim target (marrow/cortex lose their mineral)
_TAPER_MM = 1.5
_LUNGISH = (LUNG, VESSEL)
_FATTY = (FAT,)
_SOLID = (SOFT, LIVER, ADRENAL, HEART)
_BONY = (MARROW, CORTEX)


def _draw_margin(
    hu: np.ndarray,
    lab: np.ndarray,
    r: np.ndarray,
    radius: np.ndarray,
    width: float,
    density: float,
    field: np.ndarray,
    ggo_base: float,
    visible: bool = True,
) -> None:
    """The peritumoral margin: a shell ``width`` mm wide outside the lesion surface (never
    inside it), of strength ``density`` (0..1), tapering off over its last ``_TAPER_MM``.

    The taper has a fixed length, so the tissue next to the surface looks the same whatever the
    width: the width (the signal) shows only beyond it, where the mask's edge voxels do not see.
    ``visible=False`` labels the shell without changing its HU (the placement of later lesions,
    which avoids margins, then stays the same).
    """
    shell = (r > radius) & (r <= radius + width) & (lab != LESION) & (lab != HALO)
    w = np.clip((radius + width - r) / _TAPER_MM, 0.0, 1.0) * float(visible)
    strength = 0.6 + 0.4 * density
    lungish = shell & np.isin(lab, _LUNGISH)
    ggo = _GGO_HU[0] + (_GGO_HU[1] - _GGO_HU[0]) * density + ggo_base + 40.0 * field
    hu[lungish] += (w * (ggo - hu))[lungish]
    fatty = shell & np.isin(lab, _FATTY)
    hu[fatty] += (w * strength * (_STRANDING_HU - hu))[fatty]
    solid = shell & np.isin(lab, _SOLID)
    hu[solid] += (w * strength * _OEDEMA_HU)[solid]
    bony = shell & np.isin(lab, _BONY)
    hu[bony] += (w * strength * (_LYTIC_HU - hu))[bony]
    lab[lungish | fatty | solid | bony] = HALO


def draw_lesion(
    rng: np.random.Generator,
    grid: Grid,
    hu: np.ndarray,
    lab: np.ndarray,
    mask: np.ndarray,
    lesion: Mapping[str, Any],
    shape: Shape,
    centre: np.ndarray,
    normal: np.ndarray | None,
    peritumoral: bool = True,
) -> None:
    """Draw one lesion (and its margin, unless ``peritumoral`` is False) into ``hu``/``lab``/
    ``mask``; the random draws are the same either way, so the two renders differ by the margin
    only (how its partial-volume leak into the mask is measured)."""
    halo = float(lesion["halo_mm"])
    ext = shape.rmax + halo + grid.spacing
    lo = np.maximum(np.floor((centre - ext - grid.origin) / grid.spacing).astype(int), 0)
    hi = np.minimum(
        np.ceil((centre + ext - grid.origin) / grid.spacing).astype(int) + 1,
        [grid.nx, grid.ny, grid.nz],
    )
    box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    dx = (grid.xs[lo[0] : hi[0]] - centre[0])[None, None, :]
    dy = (grid.ys[lo[1] : hi[1]] - centre[1])[None, :, None]
    dz = (grid.zs[lo[2] : hi[2]] - centre[2])[:, None, None]
    d = np.stack(np.broadcast_arrays(dx, dy, dz), axis=-1)
    if normal is not None:  # lens: distances along the normal count 1/f times
        along = d @ normal
        d = d + (1.0 / PLEURA_FLATTEN - 1.0) * along[..., None] * normal
    r = np.linalg.norm(d, axis=-1)
    u = d / np.maximum(r, 1e-6)[..., None]
    radius = shape.radius(u)
    inside = r <= radius
    if not inside.any():  # never for measurable lesions; keep the centre voxel at least
        inside[tuple(np.array(inside.shape) // 2)] = True

    sub_hu, sub_lab, sub_mask = hu[box], lab[box], mask[box]
    field = _smooth_field(rng, inside.shape, 1.5 / grid.spacing[::-1])
    ggo_base = rng.uniform(-40.0, 40.0)
    if halo > 0:
        density = float(lesion["halo_density"])
        _draw_margin(sub_hu, sub_lab, r, radius, halo, density, field, ggo_base, peritumoral)
    values = float(lesion["tumour_hu"]) + float(lesion["texture_hu"]) * field
    necrotic = r < float(lesion["necrosis"]) * radius * (1.0 + 0.15 * field)
    values = np.where(necrotic, rng.uniform(5.0, 18.0) + 3.0 * field, values)
    sub_hu[inside] = values[inside]
    sub_lab[inside] = LESION
    sub_mask[inside] = int(lesion["mask_label"])
