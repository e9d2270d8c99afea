"""The realism yardstick: simulated CT measured against real chest CT.

``python -m benchmark.calibration.realism`` (docs/realism.md) compares the simulated cohorts
with real NSCLC CT (pyradiomics' lung1 and lung2) on one grid: HU per tissue, the noise power
spectrum per scanner, radiomics texture of lung and peri-lesion patches, and a classifier
two-sample test (:mod:`.two_sample`) whose AUC says how easily a patch gives the simulation away.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from tqdm.auto import tqdm

from benchmark.calibration.realism.per_scan import ScanMeasures, measure_scan
from benchmark.calibration.realism.report import RealismReport, build_report
from benchmark.calibration.realism.scans import REAL, Scan
from benchmark.calibration.realism.texture import patch_features
from benchmark.calibration.realism.two_sample import two_sample_auc

PATCH_KINDS = ("lung", "lesion")


def _features(measures: list[ScanMeasures], kind: str, progress: bool) -> pd.DataFrame:
    frames = []
    for m in tqdm(measures, desc=f"{kind} patch features", disable=not progress, leave=False):
        patches = m.lung_patches if kind == "lung" else m.lesion_patches
        if len(patches):
            f = patch_features(patches)
            f.insert(0, "scan", m.name)
            f.insert(1, "source", m.source)
            frames.append(f)
    return pd.concat(frames, ignore_index=True)


def measure(
    scans: Sequence[Scan],
    cohorts: Sequence[str],
    kernels: dict[str, str],
    *,
    real_patches: int = 60,
    simulated_patches: int = 8,
    seed: int = 0,
    progress: bool = True,
) -> RealismReport:
    """Measure every scan (real and simulated: :func:`.scans.real_scans`,
    :func:`.scans.simulated_scans`), extract patch features, run the two-sample tests."""
    measures = []
    for i, scan in enumerate(tqdm(scans, desc="scans", disable=not progress)):
        n = real_patches if scan.source == REAL else simulated_patches
        measures.append(measure_scan(scan, n, seed + i))
    features = {kind: _features(measures, kind, progress) for kind in PATCH_KINDS}
    tests = {}
    for kind, table in features.items():
        x = table.drop(columns=["scan", "source"])
        is_real = (table["source"] == "real").to_numpy()
        scan = table["scan"].to_numpy()
        tests[(kind, "all")] = two_sample_auc(x, is_real, scan, seed)
        for cohort in cohorts:
            rows = ((table["source"] == cohort) | is_real).to_numpy()
            if (table["source"] == cohort).any():
                tests[(kind, cohort)] = two_sample_auc(x[rows], is_real[rows], scan[rows], seed)
    return build_report(measures, features, tests, cohorts, kernels)


__all__ = ["RealismReport", "measure"]
