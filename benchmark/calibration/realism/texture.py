"""What a patch looks like, as numbers: HU statistics, edge strength and pyradiomics texture."""

from __future__ import annotations

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage, stats

from benchmark.calibration.realism.scans import COMMON_SPACING_MM
from benchmark.features.radiomics import build_pyradiomics

# pyradiomics on the whole patch: the classes that describe texture, at the bin width the
# harness's radiomics uses for CT (25 HU).
RADIOMICS_SETTINGS = {"binWidth": 25, "label": 1, "force2D": False}
RADIOMICS_CLASSES = ("firstorder", "glcm", "glrlm", "glszm", "ngtdm")
# The features the report shows per source (the classifier uses them all).
SHOWN = (
    "hu_mean",
    "hu_sd",
    "gradient_mean",
    "glcm_Contrast",
    "glcm_Correlation",
    "glcm_JointEntropy",
    "glrlm_RunLengthNonUniformityNormalized",
    "glszm_SmallAreaEmphasis",
    "ngtdm_Coarseness",
)


def _extractor():
    classes = {name: [] for name in RADIOMICS_CLASSES}  # [] enables every feature of a class
    return build_pyradiomics({"setting": RADIOMICS_SETTINGS, "featureClass": classes})


def _radiomics(extractor, patch: np.ndarray) -> dict[str, float]:
    # pyradiomics needs background in the mask: pad the patch by one voxel (its own edge values)
    # and segment all of the patch but the pad.
    image = sitk.GetImageFromArray(np.pad(patch, 1, mode="edge").astype(np.float32))
    image.SetSpacing(COMMON_SPACING_MM)
    mask = sitk.GetImageFromArray(np.pad(np.ones(patch.shape, np.uint8), 1))
    mask.CopyInformation(image)
    out = extractor.execute(image, mask)
    return {
        key.removeprefix("original_"): float(value)
        for key, value in out.items()
        if key.startswith("original_")
    }


def _intensity(patch: np.ndarray) -> dict[str, float]:
    values = patch.ravel()
    spacing = np.array(COMMON_SPACING_MM[::-1])
    gradient = np.sqrt(
        sum((ndimage.sobel(patch, axis=a) / (8.0 * spacing[a])) ** 2 for a in (1, 2))
    )
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return {
        "hu_mean": float(values.mean()),
        "hu_sd": float(values.std()),
        "hu_p10": float(p10),
        "hu_p50": float(p50),
        "hu_p90": float(p90),
        "hu_skewness": float(stats.skew(values)),
        "hu_kurtosis": float(stats.kurtosis(values)),
        "gradient_mean": float(gradient.mean()),
    }


def patch_features(patches: np.ndarray) -> pd.DataFrame:
    """One row of features per patch (in-plane gradient in HU/mm; radiomics 3D)."""
    extractor = _extractor()
    rows = [{**_intensity(p), **_radiomics(extractor, p)} for p in patches]
    return pd.DataFrame(rows)
