"""Everything the yardstick measures on one scan: HU per tissue, the noise spectrum, patches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.calibration.realism.nps import NoiseSpectrum, noise_spectrum
from benchmark.calibration.realism.patches import lesion_patches, parenchyma_patches
from benchmark.calibration.realism.regions import find_regions
from benchmark.calibration.realism.scans import Scan

TISSUES = ("lung", "soft_tissue", "fat", "lesion")
VALUES_KEPT = 20_000  # HU values kept per tissue and scan for the pooled distributions


@dataclass
class ScanMeasures:
    name: str
    source: str
    kernel: str
    hu: dict[str, np.ndarray]  # tissue -> a random sample of its HU values (common grid)
    nps: NoiseSpectrum | None
    lung_patches: np.ndarray
    lesion_patches: np.ndarray


def measure_scan(scan: Scan, n_patches: int, seed: int) -> ScanMeasures:
    """HU samples, patches and the noise spectrum, all on the common grid."""
    rng = np.random.default_rng(seed)
    common = scan.on_common_grid()
    regions = find_regions(common.hu, common.lesions, common.spacing)
    # On the common grid: spectra of scans with other pixel sizes are then comparable (one
    # Nyquist frequency), and it is the texture the patches carry.
    nps = noise_spectrum(common.hu, regions.body, common.spacing)
    hu = {}
    for tissue in TISSUES:
        values = common.hu[getattr(regions, tissue)]
        if len(values) > VALUES_KEPT:
            values = rng.choice(values, VALUES_KEPT, replace=False)
        hu[tissue] = values.astype(np.float32)
    return ScanMeasures(
        scan.name,
        scan.source,
        scan.kernel,
        hu,
        nps,
        parenchyma_patches(common.hu, regions, n_patches, rng),
        lesion_patches(common.hu, regions, common.spacing, n_patches, rng),
    )
