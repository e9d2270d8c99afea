"""The noise power spectrum (NPS) of a CT in uniform soft tissue.

A reconstruction kernel shapes the noise: a sharp (lung, bone) kernel passes high spatial
frequencies, so its NPS peaks further out and its noise is finer; a soft kernel leaves blotchy
noise with its power at low frequency. The mean frequency of the NPS (f_avg) orders kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

ROI_MM = 24.0  # square region of interest, in-plane
UNIFORM_RANGE_HU = 30.0  # max - min of the smoothed HU within a usable ROI
UNIFORM_WINDOW_HU = (-150.0, 150.0)  # soft tissue and fat, not air, bone or contrast
MAX_ROIS = 200


@dataclass(frozen=True)
class NoiseSpectrum:
    """A scan's NPS, radially averaged (``frequency`` in cycles/mm, ``power`` in HU^2 mm^2)."""

    n_rois: int
    noise_sd_hu: float
    f_avg: float  # power-weighted mean spatial frequency (cycles/mm)
    f_peak: float
    frequency: np.ndarray
    power: np.ndarray

    def to_dict(self) -> dict:
        return {
            "n_rois": self.n_rois,
            "noise_sd_hu": round(self.noise_sd_hu, 2),
            "f_avg_per_mm": round(self.f_avg, 4),
            "f_peak_per_mm": round(self.f_peak, 4),
        }


def _detrend(roi: np.ndarray) -> np.ndarray:
    """The ROI minus its least-squares plane (slow anatomy is not noise)."""
    ny, nx = roi.shape
    yy, xx = np.mgrid[:ny, :nx]
    design = np.column_stack([np.ones(roi.size), yy.ravel(), xx.ravel()])
    coef, *_ = np.linalg.lstsq(design, roi.ravel(), rcond=None)
    return roi - (design @ coef).reshape(roi.shape)


def _uniform_rois(hu: np.ndarray, body: np.ndarray, n: int) -> list[tuple[int, int, int]]:
    """(slice, y0, x0) of ROIs whose smoothed HU is flat and in the soft-tissue window."""
    smooth = ndimage.gaussian_filter(hu, (0.0, 2.0, 2.0))
    # Each voxel holds the extreme over the n x n square whose top-left corner it is.
    square = {"size": (1, n, n), "origin": (0, -(n // 2), -(n // 2))}
    low = ndimage.minimum_filter(smooth, **square)
    high = ndimage.maximum_filter(smooth, **square)
    inside = ndimage.minimum_filter(body.astype(np.uint8), **square)
    ok = (
        (high - low <= UNIFORM_RANGE_HU)
        & (low >= UNIFORM_WINDOW_HU[0])
        & (high <= UNIFORM_WINDOW_HU[1])
        & (inside > 0)
    )
    ok[:, hu.shape[1] - n + 1 :, :] = False
    ok[:, :, hu.shape[2] - n + 1 :] = False
    # Non-overlapping ROIs: keep lattice points a whole ROI apart.
    lattice = np.zeros_like(ok)
    lattice[:, ::n, ::n] = True
    where = np.argwhere(ok & lattice)
    if len(where) > MAX_ROIS:
        where = where[np.linspace(0, len(where) - 1, MAX_ROIS).astype(int)]
    return [tuple(int(v) for v in w) for w in where]


def noise_spectrum(hu: np.ndarray, body: np.ndarray, spacing_xyz: tuple) -> NoiseSpectrum | None:
    """The NPS over the scan's uniform ROIs; None when it has none."""
    dx, dy = float(spacing_xyz[0]), float(spacing_xyz[1])
    n = max(8, int(round(ROI_MM / dx)))
    rois = _uniform_rois(hu, body, n)
    if not rois:
        return None
    power = np.zeros((n, n))
    sds = []
    for z, y0, x0 in rois:
        noise = _detrend(hu[z, y0 : y0 + n, x0 : x0 + n].astype(float))
        sds.append(noise.std())
        power += np.abs(np.fft.fft2(noise)) ** 2
    power *= dx * dy / (n * n * len(rois))
    fy, fx = np.meshgrid(np.fft.fftfreq(n, dy), np.fft.fftfreq(n, dx), indexing="ij")
    radius = np.hypot(fy, fx)
    nyquist = 0.5 / max(dx, dy)
    edges = np.linspace(0.0, nyquist, n // 2 + 1)
    which = np.digitize(radius.ravel(), edges) - 1
    keep = (which >= 0) & (which < len(edges) - 1)
    sums = np.bincount(which[keep], power.ravel()[keep], minlength=len(edges) - 1)
    counts = np.bincount(which[keep], minlength=len(edges) - 1)
    radial = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    centres = 0.5 * (edges[1:] + edges[:-1])
    inband = radius <= nyquist
    f_avg = float((radius * power)[inband].sum() / power[inband].sum())
    return NoiseSpectrum(
        len(rois), float(np.mean(sds)), f_avg, float(centres[np.argmax(radial)]), centres, radial
    )
