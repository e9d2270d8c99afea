"""CT noise with a reconstruction kernel's texture (``acquisition.noise_model: ct``).

Filtered back-projection leaves noise whose power spectrum (NPS) rises with spatial frequency
(the ramp filter) and falls where the kernel cuts off: NPS(f) ~ f * exp(-(f / f_c)^2), so a
sharp (lung) kernel (high f_c) gives fine-grained noise and a soft one blotchy noise with no
power at zero frequency. The default model (Gaussian-smoothed white noise) peaks at zero
frequency instead, which no CT does.
"""

from __future__ import annotations

import numpy as np

from benchmark.data.simulator.grid import Grid


def ct_noise(white: np.ndarray, grid: Grid, cutoff_per_mm: float) -> np.ndarray:
    """``white`` (z, y, x) shaped slice by slice to the kernel's NPS, unit sd."""
    sx, sy = float(grid.spacing[0]), float(grid.spacing[1])
    fy = np.fft.fftfreq(white.shape[1], sy)[:, None]
    fx = np.fft.rfftfreq(white.shape[2], sx)[None, :]
    f = np.hypot(fy, fx)
    amplitude = np.sqrt(f * np.exp(-((f / cutoff_per_mm) ** 2))).astype(np.float32)
    shaped = np.fft.irfft2(
        np.fft.rfft2(white, axes=(1, 2)) * amplitude, s=white.shape[1:], axes=(1, 2)
    ).astype(np.float32)
    return shaped / max(float(shaped.std()), 1e-6)
