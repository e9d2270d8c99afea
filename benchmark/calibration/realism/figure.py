"""Pictures for a person: a real and a simulated slice per cohort (lung and mediastinal window,
lesion zoom), and the yardstick's distributions (HU per tissue, noise power spectra)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmark.calibration.realism.report import RealismReport
from benchmark.calibration.realism.scans import Scan

WINDOWS = {"lung": (-1350.0, 150.0), "mediastinum": (-160.0, 240.0)}  # (low, high) HU
ZOOM_MM = 60.0


def _slice(scan: Scan) -> tuple[np.ndarray, np.ndarray, int]:
    """The axial slice through the most lesion, its lesion mask and index."""
    area = scan.lesions.sum(axis=(1, 2))
    z = int(np.argmax(area)) if area.any() else scan.hu.shape[0] // 2
    return scan.hu[z], scan.lesions[z], z


def _extent(shape: tuple[int, int], spacing: Sequence[float]) -> list[float]:
    return [0.0, shape[1] * spacing[0], shape[0] * spacing[1], 0.0]


def slices_figure(rows: Sequence[tuple[str, Scan]], path: Path) -> None:
    """One row per (label, scan): lung window, mediastinal window, lung-window lesion zoom."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 3, figsize=(12, 3.6 * len(rows)), squeeze=False)
    for (label, scan), row in zip(rows, axes, strict=True):
        image, mask, z = _slice(scan)
        extent = _extent(image.shape, scan.spacing)
        for ax, (window, (lo, hi)) in zip(row[:2], WINDOWS.items(), strict=True):
            ax.imshow(image, cmap="gray", vmin=lo, vmax=hi, extent=extent)
            ax.set_title(f"{label}: {window} window", fontsize=9)
        ys, xs = np.nonzero(mask)
        cy = (ys.mean() if len(ys) else image.shape[0] / 2) * scan.spacing[1]
        cx = (xs.mean() if len(xs) else image.shape[1] / 2) * scan.spacing[0]
        lo, hi = WINDOWS["lung"]
        row[2].imshow(image, cmap="gray", vmin=lo, vmax=hi, extent=extent)
        if mask.any():  # at pixel centres, in the image's mm coordinates (row 0 at the top)
            x = (np.arange(image.shape[1]) + 0.5) * scan.spacing[0]
            y = (np.arange(image.shape[0]) + 0.5) * scan.spacing[1]
            row[2].contour(
                x, y, mask.astype(float), levels=[0.5], colors="tab:orange", linewidths=0.8
            )
        row[2].set_xlim(cx - ZOOM_MM / 2, cx + ZOOM_MM / 2)
        row[2].set_ylim(cy + ZOOM_MM / 2, cy - ZOOM_MM / 2)
        sx, sy, sz = scan.spacing
        row[2].set_title(
            f"lesion, {ZOOM_MM:.0f} mm (slice {z}, {sx:.2f} x {sy:.2f} x {sz:.1f} mm)", fontsize=9
        )
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=64)
    plt.close(fig)


def measures_figure(report: RealismReport, path: Path) -> None:
    """HU histograms per tissue (real vs each cohort) and the radial noise power spectra."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tissues = {"lung": (-1000, -500), "soft_tissue": (-100, 200), "lesion": (-300, 200)}
    fig, axes = plt.subplots(1, len(tissues) + 1, figsize=(16, 3.6))
    sources = [s for s in report.hu_samples if s in report.nps.index]
    for ax, (tissue, (lo, hi)) in zip(axes, tissues.items(), strict=False):
        bins = np.linspace(lo, hi, 60)
        for source in sources:
            values = report.hu_samples[source].get(tissue, np.empty(0))
            if len(values):
                ax.hist(
                    values,
                    bins=bins,
                    density=True,
                    histtype="step",
                    label=source,
                    linewidth=2 if source == "real" else 1,
                )
        ax.set_title(f"{tissue} HU")
    axes[0].legend(fontsize=8)
    ax = axes[-1]
    for source, (f, power) in report.spectra.items():
        ax.plot(
            f,
            power,
            label=f"{source} ({report.nps.loc[source, 'kernel']})",
            linewidth=2 if source == "real" else 1,
        )
    ax.set_xlabel("cycles / mm")
    ax.set_title("noise power spectrum (HU² mm²)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
